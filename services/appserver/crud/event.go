package crud

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

// log returns the logger of one of the request's events.
func (r *request) log(event string) *slog.Logger {
	if event == r.m.Event {
		return r.m.Log()
	}
	p, _ := lineage.Parent(event)
	return r.m.ChildLog(event, p)
}

// note ends an event: a child event is logged at debug level, and the
// event is recorded when the request's lineage is.
func (r *request) note(event, parent string, op wire.Op, tmpl string, start time.Time, failure *wire.Error) {
	took := time.Since(start)
	outcome := "ok"
	if failure != nil {
		outcome = string(failure.Code)
	}
	if event != r.m.Event {
		if r.m.Enabled(context.Background(), slog.LevelDebug) {
			r.log(event).Debug("child event", "op", op, "template", tmpl, "outcome", outcome, "took", took)
		}
	}
	if !r.record {
		return
	}
	r.h.cfg.Recorder.Record(wire.Lineage{
		Event: event, Parent: parent, Op: op, Template: tmpl, Node: r.h.cfg.Node, Outcome: outcome,
		Started: start.UTC(), DurationUS: took.Microseconds(), Trace: r.m.Trace,
	})
}

// child runs q on store s as child event event, holding one of the
// request's and one of the node's fan-out slots, and notes it; its error
// is the contract's, logged if the contract does not name it.
func (r *request) child(ctx context.Context, event string, q *store.Query, s store.Store) (*store.Result, error) {
	start := time.Now()
	parent, _ := lineage.Parent(event)
	res, err := r.slotted(ctx, func() (*store.Result, error) { return r.h.exec(ctx, r.m, s, q) })
	if err != nil {
		failure := r.failure(event, q.Template.Name, q.Op, err)
		r.note(event, parent, q.Op, q.Template.Name, start, failure)
		return nil, failure // logged: the read it belongs to does not log it again
	}
	r.note(event, parent, q.Op, q.Template.Name, start, nil)
	return res, nil
}

// slotted runs fn once it holds a request slot and a node slot.
func (r *request) slotted(ctx context.Context, fn func() (*store.Result, error)) (*store.Result, error) {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, waitError(ctx)
	}
	defer func() { <-r.slots }()
	select {
	case r.h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, waitError(ctx)
	}
	defer func() { <-r.h.slots }()
	return fn()
}

// waitError is the error of an operation whose request ended while it
// waited for a slot.
func waitError(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return wire.Errorf(wire.CodeTimeout, "the request's deadline passed while it waited for the node's other database operations")
	}
	return wire.Errorf(wire.CodeUnavailable, "the request ended before its database operation could start")
}

// lineage answers op lineage: the recorded tree of req.Event.
func (r *request) lineage(ctx context.Context, event string, req *wire.Request) *wire.Reply {
	log := r.h.cfg.Lineage
	if log == nil {
		return wire.ErrorReply(event, wire.Errorf(wire.CodeUnavailable, "this node records no lineage (lineage.store is off in its config)"))
	}
	if !lineage.Valid(req.Event) {
		return wire.ErrorReply(event, wire.FieldError(wire.CodeBadValue, "event", "event %q is not an event ID: printable ASCII without spaces, at most %d bytes", req.Event, lineage.MaxLen))
	}
	recs, err := log.LineageTree(ctx, req.Event, r.h.cfg.MaxLineage)
	if err != nil {
		return r.fail(event, req, fmt.Errorf("read lineage of %s: %w", req.Event, err))
	}
	tree := lineage.Tree(recs, req.Event)
	if tree == nil {
		return wire.ErrorReply(event, wire.Errorf(wire.CodeNotFound,
			"no lineage recorded for event %s: writes are recorded, reads only when they ask (record: true)", req.Event))
	}
	return &wire.Reply{OK: true, Event: event, Count: int64(len(recs)), Lineage: tree}
}

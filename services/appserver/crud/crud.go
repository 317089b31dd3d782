// Package crud serves template operations: it looks the request's template
// up, builds a validated query, runs it on the template's store and turns
// the result into a reply. It is the dispatcher's handler on appservers.
//
// One request may fan out to many database operations: a read with
// include fetches the rows of each named relation (include.go), and a
// batch carries many requests (batch.go). Rules stated once:
//
//   - Every operation a request fans out to is a child event: the request
//     is event E, the n-th operation it starts is E.n, and an operation
//     started by that one E.n.k (lineage.Child). Child events are logged
//     at debug level with their own and their parent's ID and the
//     request's traceparent, and at error level when they fail with an
//     error the contract does not name.
//   - Child operations run concurrently, each holding one of the
//     request's Fanout.Request slots and one of the node's Fanout.Node
//     slots while it waits on its store; the goroutines that wait are
//     bounded by the request's plan (its include paths, its batch items)
//     and all end before Handle returns.
//   - Lineage (Config.Recorder): a request that writes (a create, update,
//     delete, or a batch holding one) is recorded with every child event;
//     a request that only reads is recorded when it says record: true or
//     when Config.ReadSample picks it. Recording never delays or fails a
//     request (lineage.Recorder).
//   - Access (Config.Policy): every template operation a request fans out
//     to is checked against the caller, and runs limited to the caller's
//     own records where the template has an owner field (access.go).
package crud

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Config is what a Handler serves with.
type Config struct {
	Templates *template.Registry
	Stores    map[string]store.Store // by store name; every store a template names
	Limits    store.Limits
	Retry     Retry
	// Fanout bounds the operations that run at once (below).
	Fanout Fanout
	// Node names the node in lineage records.
	Node string
	// Recorder records lineage; nil records nothing.
	Recorder Recorder
	// Lineage reads recorded trees for op lineage; nil answers
	// unavailable.
	Lineage LineageReader
	// MaxLineage bounds the events one lineage reply holds (default 1000).
	MaxLineage int
	// ReadSample is the fraction of plain reads recorded (0 to 1).
	ReadSample float64
	// Policy decides what each request's caller (dispatch.Message.Caller)
	// may do (access.go); nil enforces nothing, for tests and tools that
	// run the handler in-process.
	Policy *access.Policy
}

// Fanout bounds how many database operations run at once for the
// requests that fan out.
type Fanout struct {
	Request int // for one request (default 8)
	Node    int // for every request of the handler together (default 64)
}

// Recorder takes lineage records; it must not block.
type Recorder interface {
	Record(rec wire.Lineage)
}

// LineageReader reads the records of an event and of every event below
// it, at most max.
type LineageReader interface {
	LineageTree(ctx context.Context, event string, max int) ([]wire.Lineage, error)
}

// Handler answers data requests for every template in its registry.
type Handler struct {
	cfg       Config
	templates *template.Registry
	stores    map[string]store.Store
	limits    store.Limits
	slots     chan struct{} // the node's fan-out slots
}

// Retry bounds retries of a store that answered unavailable.
type Retry struct {
	Attempts int           // tries in all (minimum 1)
	Backoff  time.Duration // first pause, doubled after each try
}

var _ dispatch.Handler = (*Handler)(nil)

// New returns a handler. Every store a template names must be in
// cfg.Stores.
func New(cfg Config) (*Handler, error) {
	for _, name := range cfg.Templates.Names() {
		t := cfg.Templates.Get(name)
		if cfg.Stores[t.Store] == nil {
			return nil, fmt.Errorf("template %s: store %s is not open", name, t.Store)
		}
	}
	cfg.Retry.Attempts = max(cfg.Retry.Attempts, 1)
	if cfg.Fanout.Request < 1 {
		cfg.Fanout.Request = 8
	}
	if cfg.Fanout.Node < cfg.Fanout.Request {
		cfg.Fanout.Node = max(64, cfg.Fanout.Request)
	}
	if cfg.MaxLineage < 1 {
		cfg.MaxLineage = 1000
	}
	// Fan-out limits left at zero take their defaults (MaxInclude 0 is a
	// choice: no include).
	l, d := &cfg.Limits, store.DefaultLimits
	for _, v := range []struct {
		got *int
		def int
	}{
		{&l.MaxBatch, d.MaxBatch}, {&l.MaxIncludeDepth, d.MaxIncludeDepth}, {&l.MaxIncludeRows, d.MaxIncludeRows},
		{&l.MaxOperations, d.MaxOperations}, {&l.MaxRows, d.MaxRows},
	} {
		if *v.got < 1 {
			*v.got = v.def
		}
	}
	return &Handler{cfg: cfg, templates: cfg.Templates, stores: cfg.Stores, limits: cfg.Limits,
		slots: make(chan struct{}, cfg.Fanout.Node)}, nil
}

// Handle implements dispatch.Handler.
func (h *Handler) Handle(ctx context.Context, m *dispatch.Message) *wire.Reply {
	req := m.Request
	if req.Op == wire.OpPing {
		return &wire.Reply{OK: true, Event: m.Event}
	}
	r := &request{h: h, m: m, record: h.recorded(req)}
	if req.Op == wire.OpBatch || len(req.Include) > 0 {
		r.slots = make(chan struct{}, h.cfg.Fanout.Request)
	}
	if req.Op == wire.OpBatch {
		reply := r.batch(ctx)
		r.note(m.Event, m.Parent, req.Op, "", m.Received, reply.Error)
		return reply
	}
	reply := r.one(ctx, m.Event, req)
	r.note(m.Event, m.Parent, req.Op, req.Template, m.Received, reply.Error)
	return reply
}

// recorded decides whether a request's lineage is recorded.
func (h *Handler) recorded(req *wire.Request) bool {
	if h.cfg.Recorder == nil {
		return false
	}
	return req.Writes() || req.Record || (h.cfg.ReadSample > 0 && rand.Float64() < h.cfg.ReadSample)
}

// request is one request being answered: what its events share.
type request struct {
	h      *Handler
	m      *dispatch.Message
	record bool
	slots  chan struct{} // the request's fan-out slots, when it fans out
	rows   atomic.Int64  // rows its operations read so far (limits.max_rows)
}

// take counts n more rows read for the request, and fails once they pass
// limits.max_rows: a fan-out reads at most that many, whatever its shape.
func (r *request) take(n int) error {
	if n == 0 {
		return nil
	}
	if total := r.rows.Add(int64(n)); total > int64(r.h.limits.MaxRows) {
		return wire.Errorf(wire.CodeTooLarge, "the request read more than %d rows in all (limits.max_rows); read fewer rows, include less or split the batch", r.h.limits.MaxRows)
	}
	return nil
}

// operations counts the database operations an item fans out to: its own
// and one per relation it includes.
func operations(plan []*inclusion) int {
	n := 1
	for _, inc := range plan {
		n += operations(inc.next)
	}
	return n
}

// tooMany is the error of a request that would fan out to n operations,
// more than limits.max_operations.
func (h *Handler) tooMany(field string, n int) *wire.Error {
	return wire.FieldError(wire.CodeTooLarge, field, "%d database operations (requests and the relations they include): at most %d (limits.max_operations)", n, h.limits.MaxOperations)
}

// one answers one ordinary request (not a batch) under event ID event.
func (r *request) one(ctx context.Context, event string, req *wire.Request) *wire.Reply {
	it := &item{req: req, event: event}
	if err := r.prepare(it); err != nil {
		return r.fail(event, req, err)
	}
	if n := operations(it.plan); n > r.h.limits.MaxOperations {
		return r.fail(event, req, r.h.tooMany("include", n))
	}
	return r.run(ctx, it, false)
}

// run answers a validated request that is not a batch; slot says it is
// one of a batch's operations, which wait for a fan-out slot.
func (r *request) run(ctx context.Context, it *item, slot bool) *wire.Reply {
	switch it.req.Op {
	case wire.OpPing:
		return &wire.Reply{OK: true, Event: it.event}
	case wire.OpLineage:
		return r.lineage(ctx, it.event, it.req)
	}
	exec := func() (*store.Result, error) { return r.h.exec(ctx, r.m, r.h.stores[it.t.Store], it.q) }
	var res *store.Result
	var err error
	if slot {
		res, err = r.slotted(ctx, exec)
	} else {
		res, err = exec()
	}
	if err == nil {
		err = r.take(len(res.Rows))
	}
	if err != nil {
		return r.fail(it.event, it.req, err)
	}
	reply := result(it.event, it.t, it.q, res)
	if len(it.plan) > 0 {
		if err := r.include(ctx, res.Rows, it.plan); err != nil {
			return r.fail(it.event, it.req, err)
		}
		for _, inc := range it.plan {
			reply.Columns = append(reply.Columns, inc.rel.As)
		}
	}
	return reply
}

// result is the reply of query q on t that produced res.
func result(event string, t *template.Template, q *store.Query, res *store.Result) *wire.Reply {
	return &wire.Reply{
		OK: true, Event: event, Rows: res.Rows, Count: res.Count, Affected: res.Affected, Key: res.Key,
		Columns: columns(t, q),
	}
}

// build validates req against t: its query, limited to owner's records
// when owner is set, and, for a read with include, the plan of relations
// to fetch, each allowed to caller.
func (h *Handler) build(t *template.Template, event string, req *wire.Request, caller *wire.Identity, owner *access.Owner) (*store.Query, []*inclusion, error) {
	q, err := store.Build(t, event, ownedData(req, owner), h.limits)
	if err != nil {
		return nil, nil, err
	}
	if err := restrict(q, owner); err != nil {
		return nil, nil, err
	}
	if len(req.Include) == 0 {
		return q, nil, nil
	}
	plan, err := h.plan(t, event, req.Include, caller)
	if err != nil {
		return nil, nil, err
	}
	needFields(q, plan)
	return q, plan, nil
}

// exec runs q, trying again while the store is unavailable, within the
// attempts and the request's deadline. Writes are safe to try again: the
// store applies each event ID once.
func (h *Handler) exec(ctx context.Context, m *dispatch.Message, s store.Store, q *store.Query) (*store.Result, error) {
	var res *store.Result
	err := h.retry(ctx, m, q.Template.Store, func() (err error) {
		res, err = s.Exec(ctx, q)
		return err
	})
	return res, err
}

// retry calls fn until it returns anything but unavailable, the attempts
// run out or ctx ends.
func (h *Handler) retry(ctx context.Context, m *dispatch.Message, storeName string, fn func() error) error {
	pause := h.cfg.Retry.Backoff
	for attempt := 1; ; attempt++ {
		err := fn()
		var we *wire.Error
		if err == nil || attempt >= h.cfg.Retry.Attempts || !errors.As(err, &we) || we.Code != wire.CodeUnavailable {
			return err
		}
		m.Log().Warn("store unavailable; trying again", "store", storeName, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// columns orders the reply's row keys as the template declares them.
func columns(t *template.Template, q *store.Query) []string {
	if q.Op != wire.OpRead {
		return nil
	}
	if len(q.Fields) == len(t.Fields) && &q.Fields[0] == &t.Fields[0] {
		return t.Names()
	}
	names := make([]string, len(q.Fields))
	for i, f := range q.Fields {
		names[i] = f.Name
	}
	return names
}

// fail turns an error into a reply for event; errors the contract does
// not name are logged here with their detail and answered internal.
func (r *request) fail(event string, req *wire.Request, err error) *wire.Reply {
	return wire.ErrorReply(event, r.failure(event, req.Template, req.Op, err))
}

// failure returns err as the contract's error; one the contract does not
// name is logged here, with its detail, under event, and becomes internal.
func (r *request) failure(event, tmpl string, op wire.Op, err error) *wire.Error {
	we, known := wire.AsError(err)
	if !known {
		r.log(event).Error("store failed", "template", tmpl, "op", op, "err", err)
	}
	return we
}

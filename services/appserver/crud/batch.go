package crud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// A batch is answered in three steps:
//
//  1. Every item is validated. An invalid item is answered with its error;
//     if it writes, no write of the batch runs.
//  2. The writes run, in item order. When they all go to one store that
//     can apply them in one transaction (store.Batcher: MariaDB), they do,
//     all or nothing, and the reply says atomic. Otherwise each applies on
//     its own, exactly once under its item's event ID, and the first that
//     fails stops the ones after it: the items say which applied.
//  3. The reads (and pings and lineage reads) run concurrently, after the
//     writes, so a read sees what the batch wrote. A read that fails fails
//     alone.
//
// Item n (1-based) is child event E.n of the batch E. The batch is ok when
// every item is; otherwise its error is the first failed item's, named.

// item is one request of a batch on its way.
type item struct {
	at    int // position in the batch
	req   *wire.Request
	event string
	t     *template.Template
	q     *store.Query
	plan  []*inclusion
	owner *access.Owner // the owner restriction q runs under, if any
	start time.Time
}

func (r *request) batch(ctx context.Context) *wire.Reply {
	h, m := r.h, r.m
	reqs := m.Request.Batch
	if len(reqs) > h.limits.MaxBatch {
		return wire.ErrorReply(m.Event, wire.FieldError(wire.CodeTooLarge, "batch", "%d requests in the batch: at most %d", len(reqs), h.limits.MaxBatch))
	}
	replies := make([]wire.Reply, len(reqs))
	items := make([]item, len(reqs))
	var writes, reads []int
	writesValid := true
	ops := 0
	for i := range reqs {
		it := &items[i]
		it.at, it.req, it.event, it.start = i, &reqs[i], lineage.Child(m.Event, i+1), time.Now()
		if err := r.prepare(it); err != nil {
			replies[i] = *r.fail(it.event, it.req, err)
			r.note(it.event, m.Event, it.req.Op, it.req.Template, it.start, replies[i].Error)
			writesValid = writesValid && !it.req.Op.Writes()
			continue
		}
		ops += operations(it.plan)
		if it.req.Op.Writes() {
			writes = append(writes, i)
		} else {
			reads = append(reads, i)
		}
	}
	if ops > h.limits.MaxOperations {
		return wire.ErrorReply(m.Event, h.tooMany("batch", ops))
	}
	atomic, cause := false, -1 // cause: the item whose failure stopped others
	switch {
	case len(writes) == 0:
	case !writesValid:
		for i := range replies { // the first invalid write
			if replies[i].Error != nil && reqs[i].Op.Writes() {
				cause = i
				break
			}
		}
		for _, i := range writes {
			if replies[i].Error == nil {
				replies[i] = *wire.ErrorReply(items[i].event, notApplied(cause, replies[cause].Error, "a write of the batch is invalid"))
			}
		}
	default:
		atomic, cause = r.writes(ctx, items, writes, replies)
	}
	r.reads(ctx, items, reads, replies)

	reply := &wire.Reply{OK: true, Event: m.Event, Items: replies, Atomic: atomic}
	if cause < 0 {
		cause = slices.IndexFunc(replies, func(r wire.Reply) bool { return !r.OK })
	}
	if cause >= 0 {
		e := *replies[cause].Error
		e.Message = fmt.Sprintf("batch[%d]: %s", cause, e.Message)
		e.Field = "batch"
		reply.OK, reply.Error = false, &e
	}
	return reply
}

// prepare validates one item and checks its caller may run it.
func (r *request) prepare(it *item) error {
	op := it.req.Op
	switch {
	case op.Tercero():
		return notHere(op)
	case op == wire.OpPing || op == wire.OpLineage:
		_, err := r.allow(nil, op)
		return err
	}
	it.t = r.h.templates.Get(it.req.Template)
	if it.t == nil {
		return wire.Errorf(wire.CodeUnknownTemplate, "no template named %q", it.req.Template)
	}
	var err error
	if it.owner, err = r.allow(it.t, op); err != nil {
		return err
	}
	it.q, it.plan, err = r.h.build(it.t, it.event, it.req, r.m.Caller, it.owner)
	return err
}

// notApplied is the error of a write that did not run because item
// cause failed with e: e's code, so a caller's retry logic reads it the
// same; why says what became of the batch's writes.
func notApplied(cause int, e *wire.Error, why string) *wire.Error {
	return &wire.Error{Code: e.Code, Message: fmt.Sprintf("not applied: batch[%d] failed (%s); %s", cause, e.Message, why)}
}

// writes runs the batch's writes (the items at idx, all valid) and
// reports whether they ran in one transaction, and which item failed
// (-1: none).
func (r *request) writes(ctx context.Context, items []item, idx []int, replies []wire.Reply) (bool, int) {
	h, m := r.h, r.m
	first := items[idx[0]].t.Store
	oneStore := true
	for _, i := range idx {
		oneStore = oneStore && items[i].t.Store == first
	}
	if b, ok := h.stores[first].(store.Batcher); ok && oneStore {
		qs := make([]*store.Query, len(idx))
		for j, i := range idx {
			qs[j] = items[i].q
		}
		var results []*store.Result
		err := h.retry(ctx, m, first, func() (err error) {
			results, err = b.ExecBatch(ctx, m.Event, qs)
			return err
		})
		var be *store.BatchError
		cause := -1
		switch {
		case err == nil:
			for j, i := range idx {
				replies[i] = *result(items[i].event, items[i].t, items[i].q, results[j])
			}
		case errors.As(err, &be) && be.Index >= 0 && be.Index < len(idx):
			bad := idx[be.Index]
			replies[bad] = *r.fail(items[bad].event, items[bad].req, be.Err)
			for _, i := range idx {
				if i != bad {
					replies[i] = *wire.ErrorReply(items[i].event, notApplied(bad, replies[bad].Error, "the transaction rolled back every write"))
				}
			}
			cause = bad
		default:
			for _, i := range idx {
				replies[i] = *r.fail(items[i].event, items[i].req, err)
			}
			cause = idx[0]
		}
		for _, i := range idx {
			r.note(items[i].event, m.Event, items[i].req.Op, items[i].t.Name, items[i].start, replies[i].Error)
		}
		return true, cause
	}
	// Across stores, or on a store without transactions: one by one, each
	// exactly once under its own event ID.
	for n, i := range idx {
		it := &items[i]
		it.start = time.Now()
		res, err := h.exec(ctx, m, h.stores[it.t.Store], it.q)
		if err != nil {
			replies[i] = *r.fail(it.event, it.req, err)
			r.note(it.event, m.Event, it.req.Op, it.t.Name, it.start, replies[i].Error)
			for _, later := range idx[n+1:] {
				replies[later] = *wire.ErrorReply(items[later].event, notApplied(i, replies[i].Error, "the writes before it applied, the ones after it did not run"))
			}
			return false, i
		}
		replies[i] = *result(it.event, it.t, it.q, res)
		r.note(it.event, m.Event, it.req.Op, it.t.Name, it.start, nil)
	}
	return false, -1
}

// reads runs the items at idx concurrently, each under the request's and
// the node's fan-out bounds; point reads of one template share a query
// (pointreads.go).
func (r *request) reads(ctx context.Context, items []item, idx []int, replies []wire.Reply) {
	var wg sync.WaitGroup
	groups, idx := groupPoints(items, idx, max(r.h.limits.MaxInList, 2))
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.points(ctx, g, replies)
		}()
	}
	for _, i := range idx {
		it := &items[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			it.start = time.Now()
			replies[i] = *r.run(ctx, it, true)
			tmpl := ""
			if it.t != nil {
				tmpl = it.t.Name
			}
			r.note(it.event, r.m.Event, it.req.Op, tmpl, it.start, replies[i].Error)
		}()
	}
	wg.Wait()
}

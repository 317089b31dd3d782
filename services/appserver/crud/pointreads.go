package crud

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

// A batch's point reads of one template (a read whose filter names only
// the key, equal to one value, with nothing else: no sort, offset or
// include) that ask for the same fields, under the same owner restriction
// if any, are answered by one query, an in on their keys, and each gets
// the row of its key: one database round trip for all of them instead of
// one each. Their replies are what each
// would have got alone; each is still its own child event.

// pointGroup is the point reads of a batch that one query answers.
type pointGroup struct {
	items []*item
	keys  []any
}

// pointKey returns the key value of a point read, and whether it is one.
func pointKey(it *item) (any, bool) {
	q := it.q
	if q == nil || q.Op != wire.OpRead || len(it.plan) > 0 || len(q.Sort) > 0 || q.Offset > 0 || q.Limit < 1 || q.Filter == nil {
		return nil, false
	}
	f := q.Filter
	if it.owner != nil { // the request's filter, and the owner's (restrict)
		if len(f.And) != 2 {
			return nil, false
		}
		f = f.And[0]
	}
	c := f.Cond
	if c == nil || c.Field != q.Template.Key || c.Op != store.OpEq || c.Value == nil {
		return nil, false
	}
	return joinKey(c.Value)
}

// groupPoints takes the point reads out of idx (the read items of a
// batch) into groups of two to most, and returns the items left.
func groupPoints(items []item, idx []int, most int) ([]*pointGroup, []int) {
	open := map[string]*pointGroup{} // by fieldsSignature, the group filling up
	var all []*pointGroup
	for _, i := range idx {
		it := &items[i]
		k, ok := pointKey(it)
		if !ok {
			continue
		}
		sig := fieldsSignature(it.q)
		if it.owner != nil {
			sig += fmt.Sprintf(";owner=%d", it.owner.User)
		}
		g := open[sig]
		if g == nil || len(g.items) == most {
			g = &pointGroup{}
			open[sig] = g
			all = append(all, g)
		}
		g.items = append(g.items, it)
		g.keys = append(g.keys, k)
	}
	var out []*pointGroup
	grouped := map[int]bool{}
	for _, g := range all {
		if len(g.items) > 1 {
			out = append(out, g)
			for _, it := range g.items {
				grouped[it.at] = true
			}
		}
	}
	rest := idx[:0:0]
	for _, i := range idx {
		if !grouped[i] {
			rest = append(rest, i)
		}
	}
	return out, rest
}

// fieldsSignature names a read's template and fields, which the point
// reads of one query share.
func fieldsSignature(q *store.Query) string {
	var b strings.Builder
	b.WriteString(q.Template.Name)
	for _, f := range q.Fields {
		b.WriteByte(',')
		b.WriteString(f.Name)
	}
	return b.String()
}

// points answers a group of point reads with one query and sets the
// reply of each.
func (r *request) points(ctx context.Context, g *pointGroup, replies []wire.Reply) {
	first := g.items[0]
	start := time.Now()
	keys := distinct(g.keys)
	key := first.t.Key
	q := &store.Query{
		Event: first.event, Template: first.t, Op: wire.OpRead, Fields: first.q.Fields, Limit: len(keys),
		Filter: &store.Expr{Cond: &store.Cond{Field: key, Op: store.OpIn, Value: keys}},
	}
	if first.owner != nil {
		q.Filter = ownedFilter(q.Filter, first.owner)
	}
	// The key tells whose each row is; reads that did not ask for it do
	// not get it.
	added := !slices.Contains(q.Fields, key)
	if added {
		q.Fields = append(q.Fields[:len(q.Fields):len(q.Fields)], key)
	}
	res, err := r.slotted(ctx, func() (*store.Result, error) { return r.h.exec(ctx, r.m, r.h.stores[first.t.Store], q) })
	if err == nil {
		err = r.take(len(res.Rows))
	}
	byKey := map[any]wire.Row{}
	if err == nil {
		for _, row := range res.Rows {
			if k, ok := joinKey(row[key.Name]); ok {
				byKey[k] = row
			}
			if added {
				delete(row, key.Name)
			}
		}
	}
	for n, it := range g.items {
		i := it.at
		it.start = start
		if err != nil {
			replies[i] = *r.fail(it.event, it.req, err)
		} else {
			rows := []wire.Row{}
			if row, ok := byKey[g.keys[n]]; ok {
				rows = append(rows, row)
			}
			replies[i] = wire.Reply{OK: true, Event: it.event, Rows: rows, Count: int64(len(rows)), Columns: columns(it.t, it.q)}
		}
		r.note(it.event, r.m.Event, it.req.Op, it.t.Name, start, replies[i].Error)
	}
}

// distinct returns keys without repeats, in their order.
func distinct(keys []any) []any {
	seen := make(map[any]bool, len(keys))
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

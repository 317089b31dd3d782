package mongo

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// execMax is exec with q.MaxAffected set.
func execMax(t *testing.T, s *Store, tpl *template.Template, event string, max int, req *wire.Request) (*store.Result, error) {
	t.Helper()
	req.Template = tpl.Name
	q := build(t, tpl, event, req)
	q.MaxAffected = max
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return s.Exec(ctx, q)
}

// TestMaxAffected: an update or delete that would touch more than
// MaxAffected records answers too_large and changes nothing; at the bound
// it runs; 0 means no bound.
func TestMaxAffected(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl) // ages: ann 30, bob 40, cid 25, dan 30, nul null, eve missing
	all := func() []wire.Row {
		t.Helper()
		return mustExec(t, s, tpl, "all", &wire.Request{Op: wire.OpRead, Sort: []string{"id"}}).Rows
	}
	before := all()

	over := []*wire.Request{
		{Op: wire.OpUpdate, Filter: raw(`{"age": {"gte": 25}}`), Data: raw(`{"nick": "changed"}`)}, // 4 match
		{Op: wire.OpDelete, Filter: raw(`{"age": {"gte": 25}}`)},
		{Op: wire.OpUpdate, Filter: raw(`{"age": {"in": [25, 30]}}`), Data: raw(`{"active": false}`)}, // 3 match
		{Op: wire.OpDelete, Filter: raw(`{"id": {"ne": "zzz"}}`)},                                     // all 6
	}
	for i, req := range over {
		_, err := execMax(t, s, tpl, "over"+string(rune('a'+i)), 2, req)
		we := wantCode(t, err, wire.CodeTooLarge)
		if !strings.Contains(we.Message, "more than 2") || strings.Contains(we.Message, "ppl_") {
			t.Errorf("%s: message %q", req.Op, we.Message)
		}
	}
	if after := all(); !reflect.DeepEqual(after, before) {
		t.Fatalf("a refused write changed records:\nbefore %v\nafter  %v", before, after)
	}

	// At the bound: runs, and touches exactly the matching records.
	res, err := execMax(t, s, tpl, "at1", 2, &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"age": 30}`), Data: raw(`{"nick": "thirty"}`)})
	if err != nil || res.Affected != 2 {
		t.Fatalf("update at the bound = %+v, %v", res, err)
	}
	res = mustExec(t, s, tpl, "chk", &wire.Request{Op: wire.OpCount, Filter: raw(`{"nick": "thirty"}`)})
	if res.Count != 2 {
		t.Fatalf("records updated = %d, want 2", res.Count)
	}
	res, err = execMax(t, s, tpl, "at2", 2, &wire.Request{Op: wire.OpDelete, Filter: raw(`{"age": 30}`)})
	if err != nil || res.Affected != 2 {
		t.Fatalf("delete at the bound = %+v, %v", res, err)
	}
	// Nothing matching is still not_found.
	_, err = execMax(t, s, tpl, "none", 2, &wire.Request{Op: wire.OpDelete, Filter: raw(`{"age": 30}`)})
	wantCode(t, err, wire.CodeNotFound)
	_, err = execMax(t, s, tpl, "none2", 2, &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"age": 30}`), Data: raw(`{"age": 1}`)})
	wantCode(t, err, wire.CodeNotFound)

	// 0: no bound.
	res, err = execMax(t, s, tpl, "free", 0, &wire.Request{Op: wire.OpDelete, Filter: raw(`{"id": {"ne": "zzz"}}`)})
	if err != nil || res.Affected != 4 {
		t.Fatalf("unbounded delete = %+v, %v", res, err)
	}
}

// TestMaxAffectedRefusalIsNotRecorded: a write refused as too_large is not
// an applied event: the same event with a narrower bound runs later.
func TestMaxAffectedRefusalIsNotRecorded(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	req := func() *wire.Request {
		return &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"age": {"gte": 25}}`), Data: raw(`{"nick": "n"}`)}
	}
	_, err := execMax(t, s, tpl, "evt", 3, req())
	wantCode(t, err, wire.CodeTooLarge)
	res, err := execMax(t, s, tpl, "evt", 10, req())
	if err != nil || res.Affected != 4 || res.Replayed {
		t.Fatalf("retry after too_large = %+v, %v", res, err)
	}
}

package mongo

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

// recordedIDs returns the target event's claim records, as strings.
func recordedIDs(t *testing.T, s *Store, event string) []string {
	t.Helper()
	rec, ok := readRecord(t, s, event)
	if !ok {
		t.Fatalf("no record of %s", event)
	}
	var out []string
	for _, id := range rec.IDs {
		out = append(out, id.StringValue())
	}
	slices.Sort(out)
	return out
}

// TestClaimRecordsTarget: the claim of an update or delete carries the
// _ids it will write while it writes, also after taking over a claim
// that recorded none (made before targets were recorded); a done record
// drops them.
func TestClaimRecordsTarget(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl) // ann and dan are 30
	for _, tc := range []struct {
		name, event string
		op          wire.Op
		takeover    bool
	}{
		{"update", "ev-update", wire.OpUpdate, false},
		{"delete", "ev-delete", wire.OpDelete, false},
		{"update after a takeover", "ev-update-takeover", wire.OpUpdate, true},
		{"delete after a takeover", "ev-delete-takeover", wire.OpDelete, true},
	} {
		if tc.takeover {
			putDeadClaim(t, s, tpl, tc.event, tc.op, nil)
		}
		req := &wire.Request{Template: tpl.Name, Op: tc.op, Filter: raw(`{"age": 30}`)}
		if tc.op == wire.OpUpdate {
			req.Data = raw(`{"nick": "n"}`)
		}
		q := build(t, tpl, tc.event, req)
		var during []string
		var resumed bool
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := s.write(ctx, q, func(_ context.Context, _ *store.Query, c *claim) (*store.Result, error) {
			during, resumed = recordedIDs(t, s, tc.event), c.resume
			return &store.Result{Affected: 2}, nil
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(during, []string{"ann", "dan"}) || resumed {
			t.Errorf("%s: the claim recorded %v (resume %v) while writing, want [ann dan] and a fresh write", tc.name, during, resumed)
		}
		if ids := recordedIDs(t, s, tc.event); len(ids) != 0 {
			t.Errorf("%s: the done record keeps %v", tc.name, ids)
		}
	}
}

// TestClaimRecordsNoTarget: a write that will change nothing (none
// matches, or more than MaxAffected) records no target, so a takeover of
// its claim finds the target anew.
func TestClaimRecordsNoTarget(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	for _, tc := range []struct {
		filter string
		max    int
	}{
		{`{"age": 99}`, 1000},
		{`{"age": 30}`, 1},
	} {
		ev := "ev-" + tc.filter
		q := build(t, tpl, ev, &wire.Request{Template: tpl.Name, Op: wire.OpDelete, Filter: raw(tc.filter)})
		q.MaxAffected = tc.max
		var during []string
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, _ = s.write(ctx, q, func(context.Context, *store.Query, *claim) (*store.Result, error) {
			during = recordedIDs(t, s, ev)
			return &store.Result{Affected: 1}, nil
		})
		cancel()
		if len(during) != 0 {
			t.Errorf("%s with bound %d: the claim recorded %v", tc.filter, tc.max, during)
		}
	}
}

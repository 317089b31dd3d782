package mongo

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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

// TestResumeStoppedByServer: a takeover finishing a dead holder's target
// that the server stops (maxTimeMS, say) keeps the record with the
// target, expired at once: the next delivery takes it over and still
// counts what the dead holder wrote, instead of running anew on a filter
// those documents no longer match.
func TestResumeStoppedByServer(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	const ev = "01JRESUMESTOPPED0000000001"
	putDeadClaim(t, s, tpl, ev, wire.OpUpdate, bson.A{"ann", "dan"})
	holderWrote(t, s, ev, bson.D{{Key: "ppl_age", Value: int64(31)}}, "ann", "dan")
	req := func() *wire.Request {
		return &wire.Request{Template: tpl.Name, Op: wire.OpUpdate, Filter: raw(`{"age": 30}`), Data: raw(`{"age": 31}`)}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	_, err := s.write(ctx, build(t, tpl, ev, req()), func(_ context.Context, _ *store.Query, c *claim) (*store.Result, error) {
		if !c.resume {
			t.Error("the takeover did not resume the recorded target")
		}
		return nil, fmt.Errorf("update: %w", mongo.CommandError{Code: 50, Message: "time limit"})
	})
	cancel()
	if err == nil {
		t.Fatal("no error")
	}
	if rec, ok := readRecord(t, s, ev); !ok || rec.State != stateClaimed || len(rec.IDs) != 2 || !expired(rec) {
		t.Fatalf("record after the stop %+v (present %v), want claimed with its target, expired", rec, ok)
	}

	start := time.Now()
	res := mustExec(t, s, tpl, ev, req())
	if res.Affected != 2 {
		t.Errorf("next delivery answered %+v, want affected 2", res)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("next delivery waited %v", el)
	}
	wantDone(t, s, ev, 2)
}

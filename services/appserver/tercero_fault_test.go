//go:build faults

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

// TestFaultKillTercero kills tercero with SIGKILL while an appserver holds
// a session in its cache: requests of that session go on (its writes
// applied once each, counted in the database), a session the appserver
// has not seen is answered unavailable (not forbidden, not
// unauthenticated: nobody could say), and once tercero is back that
// session is served. The recovery time is from tercero's restart to the
// first request of the new session served.
func TestFaultKillTercero(t *testing.T) {
	c := newCluster(t, 5*time.Minute) // longer than the outage: the cache carries it
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := c.dial(t)
	cached := register(t, ctx, admin, "cached", "member")
	fresh := register(t, ctx, admin, "fresh", "member")
	if _, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCount}, cached.as()); err != nil {
		t.Fatalf("the cached session before the kill: %v", err)
	}

	fg := figures{codes: map[wire.Code]int64{}, final: map[wire.Code]int64{}}
	record(t, "kill -9 tercero; an appserver's cached sessions go on", "from tercero's restart to a new session served", &fg)
	must(t, c.tercero.cmd.Process.Kill())
	<-c.tercero.exited
	c.tercero.cmd.Process = nil // t.Cleanup must not kill it again

	const writes = 200
	for i := range writes {
		fg.sent++
		fg.attempts++
		_, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCreate,
			Data: json.RawMessage(fmt.Sprintf(`{"text":"outage-%d"}`, i))}, cached.as())
		if err != nil {
			fg.final[code(err)]++
			t.Errorf("write %d of the cached session while tercero is down: %v", i, err)
			continue
		}
		fg.replied++
	}
	for range 3 {
		_, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCount}, fresh.as())
		fg.codes[code(err)]++
		if code(err) != wire.CodeUnavailable {
			t.Errorf("a session not cached while tercero is down: %v, want unavailable", err)
		}
	}

	restarted := time.Now()
	c.tercero = c.start(t, "tercero", "tercero-2")
	for {
		_, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCount}, fresh.as())
		if err == nil {
			break
		}
		if code(err) != wire.CodeUnavailable || ctx.Err() != nil {
			t.Fatalf("the new session once tercero is back: %v", err)
		}
	}
	fg.recovery = time.Since(restarted)

	var rows, distinct int64
	must(t, c.db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT nte_text) FROM tbl_nte WHERE nte_owner = ? AND nte_text LIKE 'outage-%'", cached.id).Scan(&rows, &distinct))
	fg.applied, fg.duplicates, fg.lost = distinct, rows-distinct, fg.replied-distinct
	if rows != writes || distinct != writes {
		t.Errorf("the database holds %d rows (%d distinct) of the %d writes", rows, distinct, writes)
	}
	t.Logf("%s", fg)
}

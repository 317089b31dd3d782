package mariadb

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

func TestSeconds(t *testing.T) {
	for ms, want := range map[int64]string{1: "0.001", 100: "0.1", 125: "0.125", 1000: "1", 1250: "1.25", 31500: "31.5", 10_000_000: "10000", 4512: "4.512", 60: "0.06"} {
		if got := seconds(ms); got != want {
			t.Errorf("seconds(%d) = %q, want %q", ms, got, want)
		}
	}
}

// The ladder rises by at most 28% a rung, so a read's limit overshoots
// its deadline by at most that, and never falls short of it.
func TestLimitLadder(t *testing.T) {
	if limitRungs[0].text != "0.1" || limitRungs[len(limitRungs)-1].text != "10000" {
		t.Fatalf("ladder from %s to %s", limitRungs[0].text, limitRungs[len(limitRungs)-1].text)
	}
	for i := 1; i < len(limitRungs); i++ {
		if r := float64(limitRungs[i].d) / float64(limitRungs[i-1].d); r <= 1 || r > 1.28 {
			t.Errorf("rung %s after %s: ratio %.3f", limitRungs[i].text, limitRungs[i-1].text, r)
		}
	}
	limit := func(d time.Duration) string {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return string(appendReadLimit(nil, ctx))
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "SET STATEMENT max_statement_time=31.5 FOR "},
		{5 * time.Second, "SET STATEMENT max_statement_time=5 FOR "},
		{4900 * time.Millisecond, "SET STATEMENT max_statement_time=5 FOR "},
		{2 * time.Minute, "SET STATEMENT max_statement_time=125 FOR "},
		{time.Millisecond, "SET STATEMENT max_statement_time=0.1 FOR "},
		{-time.Second, "SET STATEMENT max_statement_time=0.1 FOR "},
		{3 * time.Hour, ""}, // past the ladder: the server's own limit
	} {
		if got := limit(tc.d); got != tc.want {
			t.Errorf("deadline in %v: %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := appendReadLimit(nil, context.Background()); len(got) != 0 {
		t.Errorf("no deadline: %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4512*time.Millisecond)
	defer cancel()
	got := withLimit(ctx, "CALL `p`()")
	if !strings.HasPrefix(got, "SET STATEMENT max_statement_time=4.5") || !strings.HasSuffix(got, " FOR CALL `p`()") {
		t.Errorf("write limit %q", got)
	}
	if got := withLimit(context.Background(), "CALL `p`()"); got != "CALL `p`()" {
		t.Errorf("write without a deadline %q", got)
	}
}

const slowTemplate = `name = "slow"
tla = "slw"
kind = "rec"
store = "mariadb"

[fields]
id  = { type = "int", key = true }
nap = { type = "int" }

[objects]
read   = "vw_slw"
create = "sp_slw_create"
update = "sp_slw_update"

[ops]
allow = ["read", "count", "create", "update"]
`

// TestDeadlineStopsTheServer: a statement still running on MariaDB when
// the request's deadline passes is stopped by the server (it shows in
// information_schema.processlist while the call waits, and is gone
// shortly after), and the call answers timeout: reads, counts, and the
// procedure calls of a create and of an update by key.
func TestDeadlineStopsTheServer(t *testing.T) {
	tpl, err := template.Parse("slow.toml", []byte(slowTemplate), map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	const deadline = time.Second
	for _, tc := range []struct{ name, body string }{
		{"read", `{"template":"slow","op":"read"}`},
		{"count", `{"template":"slow","op":"count"}`},
		{"update", `{"template":"slow","op":"update","filter":{"id":1},"data":{"nap":2}}`},
		{"create", `{"template":"slow","op":"create","data":{"nap":2}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each sleeps on the server, not on the machine
			dsn := testenv.MariaDB(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := testenv.ApplySQL(ctx, dsn, filepath.Join("testdata", "slow.sql")); err != nil {
				t.Fatal(err)
			}
			s, err := Open(Config{DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			admin := openAdmin(t, dsn)
			// Statements of the test's database running on the server,
			// other than this look itself.
			running := func() int64 {
				return scalar(t, admin, "SELECT COUNT(*) FROM information_schema.processlist "+
					"WHERE db = DATABASE() AND id <> CONNECTION_ID() AND command NOT IN ('Sleep', 'Daemon')")
			}
			q := query(t, tpl, tc.body)
			errc := make(chan error, 1)
			start := time.Now()
			go func() {
				rctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				_, err := s.Exec(rctx, q)
				errc <- err
			}()
			seen := false
			for !seen && time.Since(start) < deadline/2 {
				seen = running() > 0
				time.Sleep(20 * time.Millisecond)
			}
			if !seen {
				t.Fatal("the statement never showed in the processlist")
			}
			err = <-errc
			returned := time.Since(start)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeTimeout {
				t.Fatalf("Exec: %v, want timeout", err)
			}
			if returned > deadline+500*time.Millisecond {
				t.Errorf("Exec returned %v after its start, deadline %v", returned, deadline)
			}
			// The server stops it within the ladder's overshoot; without
			// a limit the SLEEP(5) would run on for seconds.
			for running() > 0 {
				if time.Since(start) > 2*deadline {
					t.Fatalf("still running on the server %v after the start (deadline %v)", time.Since(start), deadline)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("returned after %v, gone from the server after %v", returned.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

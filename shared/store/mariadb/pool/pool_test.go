package pool_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store/mariadb/pool"
	"github.com/beds-project/beds/shared/testenv"
)

// TestOpen: on a real server, the session's time zone is UTC unless the
// DSN sets one, times scan as UTC, the pool has its size, and values are
// bound client side exactly when the flag or the DSN asks for it (seen as
// server-side prepares on the connection).
func TestOpen(t *testing.T) {
	dsn := testenv.MariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name        string
		params      string // added to the DSN's parameters
		interpolate bool
		prepares    bool // a query with a value prepares a statement
		zone        string
	}{
		{"flag on", "", true, false, "+00:00"},
		{"flag off", "", false, true, "+00:00"},
		{"DSN on, flag off", "interpolateParams=true", false, false, "+00:00"},
		{"DSN off, flag on", "interpolateParams=false", true, false, "+00:00"},
		{"DSN off, flag off", "interpolateParams=false", false, true, "+00:00"},
		{"DSN time zone", "time_zone=%27-05:00%27", true, false, "-05:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, sep := dsn, "?"
			if strings.Contains(d, "?") {
				sep = "&"
			}
			if tc.params != "" {
				d += sep + tc.params
			}
			db, err := pool.Open(d, 3, tc.interpolate)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if n := db.Stats().MaxOpenConnections; n != 3 {
				t.Errorf("max open connections %d, want 3", n)
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			prepares := func() int64 {
				t.Helper()
				var name string
				var n int64
				if err := conn.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Com_stmt_prepare'").Scan(&name, &n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := prepares()
			var zone string
			var now time.Time
			if err := conn.QueryRowContext(ctx, "SELECT @@session.time_zone, NOW() + INTERVAL ? SECOND", 0).Scan(&zone, &now); err != nil {
				t.Fatal(err)
			}
			if got := prepares() > before; got != tc.prepares {
				t.Errorf("prepared a statement: %v, want %v", got, tc.prepares)
			}
			if zone != tc.zone {
				t.Errorf("session time zone %q, want %q", zone, tc.zone)
			}
			if now.Location() != time.UTC {
				t.Errorf("time scanned in %v, want UTC", now.Location())
			}
		})
	}
	if _, err := pool.Open("not a dsn", 1, false); err == nil || !strings.HasPrefix(err.Error(), "dsn: ") {
		t.Errorf("bad DSN: %v", err)
	}
}

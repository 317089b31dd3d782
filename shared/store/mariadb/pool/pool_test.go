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
			db, err := pool.Open(d, 3, pool.Options{Interpolate: tc.interpolate})
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
	if _, err := pool.Open("not a dsn", 1, pool.Options{}); err == nil || !strings.HasPrefix(err.Error(), "dsn: ") {
		t.Errorf("bad DSN: %v", err)
	}
}

// TestOpenRefusesUnsafeCharsets: values bound client side are escaped byte
// by byte, which a multibyte charset whose characters may end in 0x5c or
// 0x27 defeats, so Open refuses those charsets (and their collations)
// unless binding stays on the server; the error names the charset and the
// fix. No server is needed: Open does not dial.
func TestOpenRefusesUnsafeCharsets(t *testing.T) {
	const base = "app:s3cret@tcp(db:3306)/beds"
	for _, tc := range []struct {
		name        string
		dsn         string
		interpolate bool
		refused     string // the charset or collation the error names; "" : opens
	}{
		{"gbk", base + "?charset=gbk", true, "gbk"},
		{"sjis", base + "?charset=sjis", true, "sjis"},
		{"big5", base + "?charset=big5", true, "big5"},
		{"cp932", base + "?charset=cp932", true, "cp932"},
		{"gb2312", base + "?charset=gb2312", true, "gb2312"},
		{"gb18030", base + "?charset=gb18030", true, "gb18030"},
		{"upper case", base + "?charset=GBK", true, "GBK"},
		{"second in the list", base + "?charset=utf8mb4,sjis", true, "sjis"},
		{"after other params", base + "?parseTime=true&charset=big5", true, "big5"},
		{"escaped list", base + "?charset=utf8mb4%2Cgbk", true, "gbk"},
		{"DSN turns binding on", base + "?interpolateParams=true&charset=gbk", false, "gbk"},
		{"collation", base + "?collation=gbk_chinese_ci", true, "gbk_chinese_ci"},
		{"DSN keeps binding on the server", base + "?interpolateParams=false&charset=gbk", false, ""},
		{"flag off", base + "?charset=sjis", false, ""},
		{"utf8mb4", base + "?charset=utf8mb4", true, ""},
		{"latin1", base + "?charset=latin1", true, ""},
		{"no charset", base, true, ""},
		{"slash in the password", "app:a/b?charset=gbk@tcp(db:3306)/beds?charset=utf8mb4", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := pool.Open(tc.dsn, 1, pool.Options{Interpolate: tc.interpolate})
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("Open accepted it")
			}
			msg := err.Error()
			for _, want := range []string{"=" + tc.refused + " ", "utf8mb4", "interpolateParams=false"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error %q holds the password", msg)
			}
		})
	}
}

package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// BenchmarkCreateServer measures what exactly-once costs MariaDB: the
// shipped users create as the adapter runs it (one CALL with the event ID,
// whose procedure inserts, records the event and commits in its own
// transaction; under a request deadline, so the statement carries its
// server-side time limit) against the bare CALL in autocommit with a NULL
// event ID (no record), the raw baseline's create, in the same run,
// 32 goroutines each. Besides ns/op it reports mariadb-µs/op, the
// MariaDB server's CPU per create, when it runs on this machine:
//
//	go test -run '^$' -bench BenchmarkCreateServer -benchtime 5s ./shared/store/mariadb
func BenchmarkCreateServer(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB")
	}
	dsn := testenv.MariaDB(b)
	tpl := benchUsers(b)
	s, err := Open(Config{DSN: dsn, MaxConns: 32})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(32)
	raw.SetMaxIdleConns(32)
	call, err := raw.Prepare(callSQL(tpl.Objects.Create, 1+len(tpl.Params(wire.OpCreate))))
	if err != nil {
		b.Fatal(err)
	}
	defer call.Close()
	var n atomic.Int64
	email := func() string { return fmt.Sprintf("w%d@bench.invalid", n.Add(1)) }

	for _, tc := range []struct {
		name   string
		create func(ctx context.Context) error
	}{
		{"bare CALL, autocommit", func(ctx context.Context) error {
			rows, err := call.QueryContext(ctx, nil, email(), nil, nil, nil, nil, nil) // NULL event: no record
			if err != nil {
				return err
			}
			_, err = firstValue(rows)
			return err
		}},
		{"adapter, exactly once", func(ctx context.Context) error {
			q, err := store.Build(tpl, "ev-"+email(), &wire.Request{Template: "users", Op: wire.OpCreate,
				Data: []byte(`{"email":"` + email() + `"}`)}, store.DefaultLimits)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err = s.Exec(ctx, q)
			return err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			before := serverCPU(b)
			b.SetParallelism(16) // 32 goroutines on two cores
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := tc.create(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if after := serverCPU(b); before >= 0 && after >= 0 {
				b.ReportMetric(float64(after-before)/float64(b.N), "mariadb-µs/op")
			}
		})
	}
}

// serverCPU returns the CPU time MariaDB's server process has used, in µs,
// or -1 when it does not run on this machine or cannot be read.
func serverCPU(b *testing.B) int64 {
	out, err := exec.Command("pgrep", "-x", "mariadbd").Output()
	if err != nil {
		return -1
	}
	pid := strings.Fields(string(out))
	if len(pid) == 0 {
		return -1
	}
	stat, err := os.ReadFile("/proc/" + pid[0] + "/stat")
	if err != nil {
		return -1
	}
	// Fields 14 and 15 (utime, stime), after the command name in parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return (u + s) * 1e6 / 100 // clock ticks of 10 ms
}

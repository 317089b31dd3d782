package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// BenchmarkCreateServer measures what exactly-once costs MariaDB, in the
// same run, 32 goroutines each, on the shipped users create:
//
//   - bare CALL: the procedure with a NULL event ID, which records nothing
//     (the raw baseline's create);
//   - BEDS transaction, two round trips: the shape a create had before its
//     procedure recorded the event (START TRANSACTION with the CALL, then
//     the record's INSERT with COMMIT, each statement under its time
//     limit), kept here as the comparison;
//   - adapter, exactly once: the create as the adapter runs it, one CALL
//     with the event ID, whose procedure inserts, records and commits in
//     its own transaction, under its time limit.
//
// Besides ns/op it reports mariadb-µs/op, the MariaDB server's CPU per
// create, when it runs on this machine:
//
//	go test -run '^$' -bench BenchmarkCreateServer -benchtime 5s ./shared/store/mariadb
func BenchmarkCreateServer(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB")
	}
	tpl := benchUsers(b)
	s, raw, pid := openWriteBench(b)
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
		{"bare CALL", func(ctx context.Context) error {
			rows, err := call.QueryContext(ctx, nil, email(), nil, nil, nil, nil, nil) // NULL event: no record
			if err != nil {
				return err
			}
			_, err = firstValue(rows)
			return err
		}},
		{"BEDS transaction, two round trips", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			w, err := s.begin(ctx)
			if err != nil {
				return err
			}
			defer w.end(ctx)
			e := email()
			rows, err := w.query(ctx, withLimit(ctx, callSQL(tpl.Objects.Create, 1+len(tpl.Params(wire.OpCreate)))), nil, e, nil, nil, nil, nil, nil)
			if err != nil {
				return err
			}
			key, err := firstValue(rows)
			if err != nil {
				return err
			}
			w.record(ctx, "ev-"+e, "users", "create", 1, fmt.Sprint(key))
			return w.commit(ctx)
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
		b.Run(tc.name, func(b *testing.B) { testenv.BenchParallel(b, pid, "mariadb-µs/op", tc.create) })
	}
}

// openWriteBench returns, on a new database with the shipped objects, the
// adapter's store and a raw pool, 32 connections each, closed when the
// benchmark ends, and the server's pid (serverPID).
func openWriteBench(b *testing.B) (*Store, *sql.DB, int) {
	s, raw := openStore(b, testenv.MariaDB(b), 32)
	raw.SetMaxOpenConns(32)
	raw.SetMaxIdleConns(32)
	return s, raw, serverPID(b, raw)
}

// serverPID returns the process ID of the MariaDB server db talks to, read
// from its pid file, or 0 when it runs elsewhere or the file is not
// readable (no CPU figure then). A name would not do: the replica pair
// runs more mariadbd processes beside the tests' server.
func serverPID(b *testing.B, db *sql.DB) int {
	var file string
	if err := db.QueryRow("SELECT @@pid_file").Scan(&file); err != nil {
		b.Fatal(err)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
	if err != nil {
		return 0
	}
	return pid
}

// BenchmarkUpdateServer measures an update's cost to MariaDB the same way,
// on 1,000 shipped users records, each update setting the name of one:
//
//   - bare CALL: the update procedure with a NULL event ID, which records
//     nothing (the raw baseline's update);
//   - adapter, by key: the update as the adapter runs one filtered by the
//     key, one CALL whose procedure locks, merges, records and commits;
//   - adapter, by filter: filtered by the (unique) email instead, BEDS's
//     transaction: the locking read of the key through the view, the CALL
//     with no event, the record, COMMIT, in two round trips.
//
// It reports mariadb-µs/op like BenchmarkCreateServer:
//
//	go test -run '^$' -bench BenchmarkUpdateServer -benchtime 5s ./shared/store/mariadb
func BenchmarkUpdateServer(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB")
	}
	const records = 1000
	tpl := benchUsers(b)
	s, raw, pid := openWriteBench(b)
	if _, err := raw.Exec("INSERT INTO tbl_usr (usr_id, usr_email) SELECT seq, CONCAT('u', seq, '@bench.invalid') FROM seq_1_to_" + strconv.Itoa(records)); err != nil {
		b.Fatal(err)
	}
	call, err := raw.Prepare(callSQL(tpl.Objects.Update, 2+len(tpl.Params(wire.OpUpdate))))
	if err != nil {
		b.Fatal(err)
	}
	defer call.Close()
	var n atomic.Int64
	next := func() (int64, int64) { i := n.Add(1); return i, 1 + i%records }
	update := func(ctx context.Context, filter string, i int64) error {
		q, err := store.Build(tpl, fmt.Sprintf("ev-u%d", i), &wire.Request{Template: "users", Op: wire.OpUpdate,
			Filter: []byte(filter), Data: []byte(fmt.Sprintf(`{"name":"n%d"}`, i))}, store.DefaultLimits)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = s.Exec(ctx, q)
		return err
	}

	for _, tc := range []struct {
		name   string
		update func(ctx context.Context) error
	}{
		{"bare CALL", func(ctx context.Context) error {
			i, key := next()
			rows, err := call.QueryContext(ctx, nil, "name", key, nil, fmt.Sprintf("n%d", i), nil, nil, nil, nil) // NULL event: no record
			if err != nil {
				return err
			}
			_, err = firstValue(rows)
			return err
		}},
		{"adapter, by key", func(ctx context.Context) error {
			i, key := next()
			return update(ctx, fmt.Sprintf(`{"id":%d}`, key), i)
		}},
		{"adapter, by filter", func(ctx context.Context) error {
			i, key := next()
			return update(ctx, fmt.Sprintf(`{"email":"u%d@bench.invalid"}`, key), i)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) { testenv.BenchParallel(b, pid, "mariadb-µs/op", tc.update) })
	}
}

// BenchmarkRecord measures what recording an update's event costs
// MariaDB, on 1,000 shipped users records, each update setting the name
// of one, by a prepared CALL of:
//
//   - bare: the shipped update procedure with a NULL event ID, which
//     records nothing (the raw baseline's update);
//   - inserted: the same procedure with an event ID, which inserts its
//     record into beds_events (the procedures bedsctl schema gen writes);
//   - beds_record: a copy of it that records by CALL beds_record instead,
//     as the generated procedures did until step 5 (docs/performance.md).
//
// A run of one after the other would not compare them: MariaDB's CPU per
// update grows through a run as the pages the earlier updates dirtied are
// flushed, and a run pays for some of the work the one before left
// MariaDB (flushing, purge). So the three take turns in each of their six
// orders in turn, recordRounds rounds, 32 goroutines for recordSlice at a
// time, and each reports the median of its slices in MariaDB's CPU per
// update (bare-µs/op and so on). A call takes about 45 s, so the default
// -benchtime makes one:
//
//	go test -run '^$' -bench BenchmarkRecord ./shared/store/mariadb
func BenchmarkRecord(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB")
	}
	const (
		records      = 1000
		recordRounds = 18
		recordSlice  = 800 * time.Millisecond
	)
	tpl := benchUsers(b)
	_, raw, pid := openWriteBench(b)
	if pid == 0 {
		b.Skip("MariaDB runs elsewhere: its CPU cannot be read")
	}
	if _, err := raw.Exec("INSERT INTO tbl_usr (usr_id, usr_email) SELECT seq, CONCAT('u', seq, '@bench.invalid') FROM seq_1_to_" + strconv.Itoa(records)); err != nil {
		b.Fatal(err)
	}
	n := 2 + len(tpl.Params(wire.OpUpdate))
	prepare := func(proc string) *sql.Stmt {
		st, err := raw.Prepare(callSQL(proc, n))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}
	shipped := prepare(tpl.Objects.Update)
	byCall := prepare(recordByCall(b, raw, tpl.Objects.Update, recordSQL(tpl.Name, wire.OpUpdate, q("beds_rows"), "NULL")))
	var seq atomic.Int64
	update := func(st *sql.Stmt, event bool) func(context.Context) error {
		return func(ctx context.Context) error {
			i := seq.Add(1)
			var ev any
			if event {
				ev = fmt.Sprintf("ev-r%d", i)
			}
			rows, err := st.QueryContext(ctx, ev, "name", 1+i%records, nil, fmt.Sprintf("n%d", i), nil, nil, nil, nil)
			if err != nil {
				return err
			}
			_, err = firstValue(rows)
			return err
		}
	}
	variants := []struct {
		name string
		run  func(context.Context) error
	}{
		{"bare", update(shipped, false)},
		{"inserted", update(shipped, true)},
		{"beds_record", update(byCall, true)},
	}
	// The six orders of the three in turn: each follows each other one,
	// and goes first, as often.
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	cpu := make([][]float64, len(variants))
	for round := range recordRounds {
		for _, v := range orders[round%len(orders)] {
			variant := variants[v]
			before := testenv.ProcessCPU(pid)
			var ops atomic.Int64
			ctx, cancel := context.WithTimeout(context.Background(), recordSlice)
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for ctx.Err() == nil {
						if err := variant.run(context.Background()); err != nil {
							b.Error(err)
							return
						}
						ops.Add(1)
					}
				})
			}
			wg.Wait()
			cancel()
			cpu[v] = append(cpu[v], float64((testenv.ProcessCPU(pid)-before).Microseconds())/float64(max(ops.Load(), 1)))
		}
	}
	for v, variant := range variants {
		slices.Sort(cpu[v])
		b.ReportMetric(cpu[v][len(cpu[v])/2], variant.name+"-µs/op")
	}
}

// recordByCall creates a copy of procedure proc that records its event by
// CALL beds_record instead of its own insert, record (recordSQL's text,
// which the procedure must hold), and returns the copy's name.
func recordByCall(b *testing.B, db *sql.DB, proc, record string) string {
	b.Helper()
	var name, mode, text string
	if err := db.QueryRow("SHOW CREATE PROCEDURE "+q(proc)).Scan(&name, &mode, &text, new(any), new(any), new(any)); err != nil {
		b.Fatal(err)
	}
	copyName := proc + "_by_call"
	body := strings.Replace(text, q(proc), q(copyName), 1)
	args := strings.TrimSuffix(strings.SplitN(record, "VALUES (", 2)[1], ")")
	called := strings.Replace(body, record, "CALL "+q(recordProc)+"("+args+")", 1)
	if called == body {
		b.Fatalf("procedure %s does not hold %s", proc, record)
	}
	if _, err := db.Exec(called); err != nil {
		b.Fatal(err)
	}
	return copyName
}

package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
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
	pid := serverPID(b, raw)
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

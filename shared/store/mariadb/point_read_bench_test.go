package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/bench"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// The in-process point read on MariaDB, without network: decode the body,
// validate and build the query (store.Build), then Store.Exec as in
// production (the statement built into a pooled buffer, the cached
// prepared statement, database/sql on a driver that answers one users row
// from memory, the scan into a reply row), and encode the reply into a
// reused buffer as the dispatcher does. Sub-benchmarks split the steps.
//
//	go test -run '^$' -bench PointRead -benchmem ./shared/store/mariadb

const pointReadBody = `{"template":"users","op":"read","filter":{"id":12345}}`

const benchEvent = "01JD8X3Q7P2M4N5R6S7T8V9W0X"

func benchUsers(b *testing.B) *template.Template {
	b.Helper()
	file := filepath.Join(testenv.Root(b), "templates", "users_rec.toml")
	src, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	tpl, err := template.Parse(file, src, map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		b.Fatal(err)
	}
	return tpl
}

// memConnector's connections answer every query with the same users row,
// as go-sql-driver delivers it from a prepared statement with parseTime
// (ints as int64, strings as []byte, the datetime as time.Time).
type memConnector struct{}

func (memConnector) Connect(context.Context) (driver.Conn, error) { return memConn{}, nil }
func (memConnector) Driver() driver.Driver                        { return memDriver{} }

type memDriver struct{}

func (memDriver) Open(string) (driver.Conn, error) { return memConn{}, nil }

type memConn struct{}

func (memConn) Prepare(string) (driver.Stmt, error) { return memStmt{}, nil }
func (memConn) Close() error                        { return nil }
func (memConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }

type memStmt struct{}

func (memStmt) Close() error                               { return nil }
func (memStmt) NumInput() int                              { return -1 }
func (memStmt) Exec([]driver.Value) (driver.Result, error) { return nil, driver.ErrSkip }
func (memStmt) Query([]driver.Value) (driver.Rows, error)  { return &memRows{}, nil }
func (memStmt) QueryContext(context.Context, []driver.NamedValue) (driver.Rows, error) {
	return &memRows{}, nil
}

var (
	memCols    = []string{"usr_id", "usr_email", "usr_name", "usr_age", "usr_score", "usr_active", "usr_prefs", "usr_created"}
	memCreated = time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
)

type memRows struct{ done bool }

func (*memRows) Columns() []string { return memCols }
func (*memRows) Close() error      { return nil }
func (r *memRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(12345)
	dest[1] = []byte("ann@example.com")
	dest[2] = []byte("Ann Example")
	dest[3] = int64(34)
	dest[4] = 2.5
	dest[5] = int64(1)
	dest[6] = nil
	dest[7] = memCreated
	return nil
}

func BenchmarkPointRead(b *testing.B) {
	tpl := benchUsers(b)
	db := sql.OpenDB(memConnector{})
	s := newStore(db, false)
	defer s.Close()
	body := []byte(pointReadBody)
	ctx := context.Background()

	// The baseline server of bedsctl bench runs this very statement.
	req, _ := wire.DecodeRequest(body)
	q, err := store.Build(tpl, benchEvent, req, store.DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	if stmt, _ := selectSQL(q, q.Fields, false); stmt != bench.PointReadSQL {
		b.Fatalf("the adapter's point read is\n%s\nbut bench.PointReadSQL is\n%s", stmt, bench.PointReadSQL)
	}
	fq, _ := wire.DecodeRequest([]byte(`{"template":"users","op":"read","filter":{"email":{"like":"p-%"},"id":{"gte":1}},"sort":["id"],"limit":10}`))
	fquery, _ := store.Build(tpl, benchEvent, fq, store.DefaultLimits)
	if stmt, _ := selectSQL(fquery, fquery.Fields, false); stmt != bench.FilteredReadSQL {
		b.Fatalf("the adapter's filtered read is\n%s\nbut bench.FilteredReadSQL is\n%s", stmt, bench.FilteredReadSQL)
	}
	buf := make([]byte, 0, 1024)

	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req wire.Request
			if err := req.Decode(body); err != nil {
				b.Fatal(err)
			}
			q, err := store.Build(tpl, benchEvent, &req, store.DefaultLimits)
			if err != nil {
				b.Fatal(err)
			}
			res, err := s.Exec(ctx, q)
			if err != nil || len(res.Rows) != 1 {
				b.Fatal(err, res)
			}
			reply := wire.Reply{OK: true, Event: benchEvent, Node: "appserver@bench", Rows: res.Rows, Count: res.Count}
			if buf, err = reply.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req wire.Request
			if err := req.Decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := store.Build(tpl, benchEvent, req, store.DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sql", func(b *testing.B) {
		b.ReportAllocs()
		var text []byte
		var args []any
		for b.Loop() {
			text, args = appendSelect(text[:0], args[:0], q, q.Fields, false)
		}
	})
	b.Run("exec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Exec(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
	})
	// As a node runs it: every request has a deadline (dispatch.Deadline).
	dctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	b.Run("exec-deadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Exec(dctx, q); err != nil {
				b.Fatal(err)
			}
		}
	})
	res, _ := s.Exec(ctx, q)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reply := wire.Reply{OK: true, Event: benchEvent, Node: "appserver@bench", Rows: res.Rows, Count: res.Count}
			if buf, err = reply.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPointReadServer runs the adapter's point read against the real
// MariaDB (skipped under -short or without a server), with the driver's
// default statements (prepare, execute, close: two round trips) and with
// interpolateParams=true (one text round trip), and, for comparison, a
// statement prepared once and reused (one binary round trip).
func BenchmarkPointReadServer(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB")
	}
	dsn := testenv.MariaDB(b)
	tpl := benchUsers(b)
	ctx := context.Background()
	s, err := Open(Config{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cq, _ := store.Build(tpl, benchEvent, &wire.Request{Template: "users", Op: wire.OpCreate,
		Data: []byte(`{"email":"bench@example.com","name":"Ann","age":34}`)}, store.DefaultLimits)
	res, err := s.Exec(ctx, cq)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(fmt.Sprintf(`{"template":"users","op":"read","filter":{"id":%v}}`, res.Key))
	req, _ := wire.DecodeRequest(body)
	q, _ := store.Build(tpl, benchEvent, req, store.DefaultLimits)

	ic, err := mysql.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	ic.InterpolateParams = true
	// "deadline": as a node runs it, the statement bounded on the server
	// by the request's deadline (SET STATEMENT max_statement_time).
	dctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	for _, mode := range []struct {
		name, dsn string
		ctx       context.Context
	}{{"plain", dsn, ctx}, {"interpolate", ic.FormatDSN(), ctx}, {"deadline", dsn, dctx}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := Open(Config{DSN: mode.dsn})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			for b.Loop() {
				r, err := s.Exec(mode.ctx, q)
				if err != nil || len(r.Rows) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("prepared", func(b *testing.B) {
		stmt, args := selectSQL(q, q.Fields, false)
		ps, err := s.primary.PrepareContext(ctx, stmt)
		if err != nil {
			b.Fatal(err)
		}
		defer ps.Close()
		b.ReportAllocs()
		for b.Loop() {
			rows, err := ps.QueryContext(ctx, args...)
			if err != nil {
				b.Fatal(err)
			}
			if out, err := scanRows(rows, q.Fields, &scanner{}); err != nil || len(out) != 1 {
				b.Fatal(err)
			}
		}
	})
}

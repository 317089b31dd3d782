package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// The cache's bookkeeping (what it keeps, closes, and locks while it
// prepares) is pure logic: these tests run it on a driver that counts the
// statements it has open. TestStatementCacheInLists runs it on MariaDB.

// countDB is a driver whose statements count themselves; a Prepare of a
// text in block waits until its channel closes.
type countDB struct {
	mu       sync.Mutex
	open     int // driver statements not yet closed
	prepares int
	block    map[string]chan struct{}
	blocked  chan string // a Prepare that waits sends its text first
	full     bool        // Prepare fails as a server out of statements does
	queries  int         // unprepared queries
}

func (d *countDB) Connect(context.Context) (driver.Conn, error) { return countConn{d}, nil }
func (d *countDB) Driver() driver.Driver                        { return nil }

func (d *countDB) stats() (open, prepares int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open, d.prepares
}

type countConn struct{ d *countDB }

func (c countConn) Prepare(query string) (driver.Stmt, error) {
	c.d.mu.Lock()
	ch := c.d.block[query]
	c.d.mu.Unlock()
	if ch != nil {
		c.d.blocked <- query
		<-ch
	}
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.d.full {
		return nil, &mysql.MySQLError{Number: 1461, Message: "Can't create more than max_prepared_stmt_count statements (current value: 16382)"}
	}
	c.d.open++
	c.d.prepares++
	return &countStmt{d: c.d}, nil
}
func (countConn) Close() error              { return nil }
func (countConn) Begin() (driver.Tx, error) { return nil, driver.ErrSkip }

// QueryContext answers unprepared queries (the cache's fallback).
func (c countConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.queries++
	return &oneRow{}, nil
}

type countStmt struct {
	d      *countDB
	closed bool
}

func (s *countStmt) Close() error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if s.closed {
		panic("statement closed twice")
	}
	s.closed = true
	s.d.open--
	return nil
}
func (*countStmt) NumInput() int                              { return -1 }
func (*countStmt) Exec([]driver.Value) (driver.Result, error) { return nil, driver.ErrSkip }
func (s *countStmt) Query([]driver.Value) (driver.Rows, error) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("query on a closed statement")
	}
	return &oneRow{}, nil
}

type oneRow struct{ done bool }

func (*oneRow) Columns() []string { return []string{"n"} }
func (*oneRow) Close() error      { return nil }
func (r *oneRow) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(1)
	return nil
}

func newCountCache(t *testing.T, entries, conns int) (*stmtCache, *countDB) {
	t.Helper()
	d := &countDB{block: map[string]chan struct{}{}, blocked: make(chan string, 1)}
	db := sql.OpenDB(d)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	c := newStmtCache(db)
	c.max = entries
	t.Cleanup(func() { c.close(); db.Close() })
	return c, d
}

func runText(t *testing.T, c *stmtCache, text string, args ...any) {
	t.Helper()
	rows, err := c.query(context.Background(), []byte(text), args...)
	if err != nil {
		t.Error(err)
		return
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Error(err)
	}
}

// TestStmtCacheEvicts: past its bound the cache drops the least recently
// used statement and closes it; a statement used again stays.
func TestStmtCacheEvicts(t *testing.T) {
	c, d := newCountCache(t, 4, 1)
	runText(t, c, "SELECT 0")
	for i := 1; i <= 100; i++ {
		runText(t, c, fmt.Sprintf("SELECT %d", i))
		runText(t, c, "SELECT 0") // kept in use: never evicted
		if n := c.len(); n > 4 {
			t.Fatalf("%d cached statements, bound 4", n)
		}
		if open, _ := d.stats(); open > 4 {
			t.Fatalf("%d statements open on the connection, bound 4", open)
		}
	}
	if _, prepares := d.stats(); prepares != 101 {
		t.Errorf("%d prepares, want 101 (SELECT 0 once, then each other text once)", prepares)
	}
	c.close()
	if open, _ := d.stats(); open != 0 {
		t.Errorf("%d statements open after close", open)
	}
}

// TestStmtCacheSkipsBigStatements: long texts and many placeholders run
// unprepared and take no place in the cache.
func TestStmtCacheSkipsBigStatements(t *testing.T) {
	c, d := newCountCache(t, 8, 1)
	many := make([]any, maxStmtParams+1)
	runText(t, c, "SELECT ?"+strings.Repeat(", ?", maxStmtParams), many...)
	runText(t, c, "SELECT 1 "+strings.Repeat(" ", maxStmtText))
	if _, prepares := d.stats(); prepares != 0 || c.len() != 0 {
		t.Errorf("%d prepares, %d cached: want none", prepares, c.len())
	}
	runText(t, c, "SELECT ?"+strings.Repeat(", ?", maxStmtParams-1), many[:maxStmtParams]...)
	if _, prepares := d.stats(); prepares != 1 || c.len() != 1 {
		t.Errorf("at the bound: %d prepares, %d cached: want 1", prepares, c.len())
	}
}

// TestStmtCachePreparesOutsideTheLock: while one text's prepare waits on
// the server, cached statements keep running.
func TestStmtCachePreparesOutsideTheLock(t *testing.T) {
	c, d := newCountCache(t, 8, 4)
	runText(t, c, "SELECT 1")
	slow := make(chan struct{})
	d.mu.Lock()
	d.block["SELECT 2"] = slow
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runText(t, c, "SELECT 2")
	}()
	<-d.blocked // the slow prepare has started
	hit := make(chan struct{})
	go func() {
		defer close(hit)
		runText(t, c, "SELECT 1")
	}()
	select {
	case <-hit:
	case <-time.After(2 * time.Second):
		t.Error("a cached statement waited for another statement's prepare")
	}
	close(slow)
	<-done
	<-hit
}

// TestStmtCacheConcurrent: many callers over more texts than the cache
// holds: every query runs (none on a statement evicted under it), every
// statement is closed once, and none is left open after close.
func TestStmtCacheConcurrent(t *testing.T) {
	c, d := newCountCache(t, 3, 4)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				runText(t, c, fmt.Sprintf("SELECT %d", (i*7+g)%10))
			}
		}()
	}
	wg.Wait()
	if open, _ := d.stats(); open > 3*4 {
		t.Errorf("%d statements open, bound 3 entries x 4 connections", open)
	}
	c.close()
	if open, _ := d.stats(); open != 0 {
		t.Errorf("%d statements open after close", open)
	}
	// After close the cache still answers, unprepared statements closed.
	runText(t, c, "SELECT 42")
	if open, _ := d.stats(); open != 0 {
		t.Errorf("%d statements open after a query on a closed cache", open)
	}
}

// TestStmtCacheServerFull: when the server has no statement left to give
// (max_prepared_stmt_count, which every client shares), reads run
// unprepared instead of failing.
func TestStmtCacheServerFull(t *testing.T) {
	c, d := newCountCache(t, 8, 2)
	runText(t, c, "SELECT 1")
	d.mu.Lock()
	d.full = true
	d.mu.Unlock()
	runText(t, c, "SELECT 2") // prepare fails
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ { // the cached one, on a second connection
		wg.Add(1)
		go func() { defer wg.Done(); runText(t, c, "SELECT 1") }()
	}
	wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queries == 0 {
		t.Error("no query ran unprepared")
	}
}

// TestStatementCacheInLists sends reads with 2,000 distinct in-list
// lengths through Store.Exec on MariaDB, from two callers on a pool of
// two connections: every read answers (no prepare fails), only the
// statements within maxStmtParams placeholders are prepared, and each
// connection's session holds at most the cache's bound of them; with a
// small bound, evictions close statements on the server.
func TestStatementCacheInLists(t *testing.T) {
	dsn := testenv.MariaDB(t)
	tpl := repoUsers(t)
	admin := openAdmin(t, dsn)
	if _, err := admin.Exec("INSERT INTO tbl_usr (usr_email) VALUES ('in@example.com')"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		entries int // 0: the default for the pool
		lengths int
	}{{"default bound", 0, 2000}, {"bound 8", 8, 128}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(Config{DSN: dsn, MaxConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if tc.entries > 0 {
				s.reads.max = tc.entries
			}
			bound := s.reads.max
			globalBefore := globalPrepared(t, admin)
			var wg sync.WaitGroup
			for g := 0; g < 2; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 1 + g; n <= tc.lengths; n += 2 {
						res, err := s.Exec(context.Background(), inRead(tpl, n))
						if err != nil || len(res.Rows) != 1 {
							t.Errorf("in list of %d: %+v %v", n, res, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			prepared, closed := sessionStmts(t, s, 2)
			for i := range prepared {
				if open := prepared[i] - closed[i]; open > int64(bound) {
					t.Errorf("connection %d holds %d prepared statements, bound %d", i, open, bound)
				}
				// Lengths past the placeholder bound run unprepared.
				if prepared[i] > maxStmtParams {
					t.Errorf("connection %d prepared %d statements: more than the %d cacheable in-list lengths", i, prepared[i], maxStmtParams)
				}
			}
			if tc.entries > 0 && closed[0]+closed[1] == 0 {
				t.Errorf("%d statements closed on the server: evictions do not close", closed[0]+closed[1])
			}
			t.Logf("bound %d: prepared %v, closed %v; server-wide Prepared_stmt_count %d before, %d after",
				bound, prepared, closed, globalBefore, globalPrepared(t, admin))
		})
	}
}

// inRead reads the users whose id is in a list of n values (repeating
// 1..8: the server sorts long lists of distinct values slowly).
func inRead(tpl *template.Template, n int) *store.Query {
	vals := make([]any, n)
	for i := range vals {
		vals[i] = int64(1 + i%8)
	}
	return &store.Query{Template: tpl, Op: wire.OpRead, Fields: tpl.Fields, Limit: 10,
		Filter: &store.Expr{Cond: &store.Cond{Field: tpl.Key, Op: store.OpIn, Value: vals}}}
}

// sessionStmts returns, for each of the store's conns connections, the
// statements its session prepared and closed.
func sessionStmts(t *testing.T, s *Store, conns int) (prepared, closed []int64) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < conns; i++ {
		c, err := s.primary.Conn(ctx) // held: the next one is another connection
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		status := map[string]int64{}
		rows, err := c.QueryContext(ctx, "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				t.Fatal(err)
			}
			status[name] = n
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		prepared, closed = append(prepared, status["Com_stmt_prepare"]), append(closed, status["Com_stmt_close"])
	}
	return prepared, closed
}

func globalPrepared(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var name string
	var n int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

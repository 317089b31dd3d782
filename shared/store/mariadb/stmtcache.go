package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/go-sql-driver/mysql"
)

// stmtBudget bounds the statements one pool's cache keeps prepared on its
// server. database/sql prepares a cached statement on each connection that
// runs it, so a cache of n entries may hold n x connections statements:
// the cache keeps stmtBudget / MaxConns entries (125 at the default 16
// connections; never fewer than 32 nor more than 512), so eight nodes stay
// under MariaDB's default max_prepared_stmt_count (16,382) whatever their
// callers send, and past it reads run unprepared rather than fail.
const (
	stmtBudget     = 2000
	minStatements  = 32
	maxStatements  = 512
	errTooManyStmt = 1461 // ER_MAX_PREPARED_STMT_COUNT_REACHED
)

// Statements past these bounds run unprepared (with client-side binding:
// one text round trip, where a cache miss costs two). Long texts and
// many placeholders are long in lists, whose every length is a statement
// of its own, rarely run twice: cached, they would only push out the point
// reads that are, and each would hold server memory on every connection.
// 64 values keeps every short in list cacheable.
const (
	maxStmtText   = 4096
	maxStmtParams = 64
)

// stmtCache keeps one prepared statement per SQL text for a pool, the
// least recently used evicted (and closed) past its bound. database/sql
// prepares a statement on each connection as the connection first runs it
// and re-prepares after a reconnect, so a point read costs one execute
// round trip in the binary protocol instead of a text query.
//
// Prepares run outside the lock; two callers preparing the same text at
// once both prepare, and the second to store it closes its own. A
// statement in use when it is evicted is closed by its last user.
type stmtCache struct {
	db  *sql.DB
	max int // entries

	mu     sync.Mutex
	m      map[string]*stmtEntry
	lru    stmtEntry // sentinel: lru.next is the most recently used
	closed bool
}

type stmtEntry struct {
	text       string
	st         *sql.Stmt
	prev, next *stmtEntry
	refs       int  // queries between get and release
	evicted    bool // out of the cache: the last release closes st
}

// newStmtCache returns a cache on db sized by the pool's connection cap.
func newStmtCache(db *sql.DB) *stmtCache {
	n := maxStatements
	if conns := db.Stats().MaxOpenConnections; conns > 0 {
		n = min(max(stmtBudget/conns, minStatements), maxStatements)
	}
	c := &stmtCache{db: db, max: n, m: map[string]*stmtEntry{}}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// query runs text with args, prepared unless the statement is too big to
// cache. text is only read during the call.
func (c *stmtCache) query(ctx context.Context, text []byte, args ...any) (*sql.Rows, error) {
	if len(text) > maxStmtText || len(args) > maxStmtParams {
		return c.db.QueryContext(ctx, string(text), args...)
	}
	e := c.get(text)
	if e == nil {
		st, err := c.db.PrepareContext(ctx, string(text))
		if isTooManyStmts(err) {
			// The server is out of statements (other clients count too):
			// a cache is not worth failing the request for.
			return c.db.QueryContext(ctx, string(text), args...)
		}
		if err != nil {
			return nil, err
		}
		e = c.put(string(text), st)
	}
	rows, err := e.st.QueryContext(ctx, args...)
	c.release(e)
	if isTooManyStmts(err) {
		// Preparing it on one more connection failed.
		return c.db.QueryContext(ctx, string(text), args...)
	}
	return rows, err
}

func isTooManyStmts(err error) bool {
	if err == nil {
		return false // before me, which escapes: no allocation per query
	}
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == errTooManyStmt
}

// get returns the entry for text, marked in use and most recently used,
// or nil.
func (c *stmtCache) get(text []byte) *stmtEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[string(text)]
	if e == nil {
		return nil
	}
	e.refs++
	c.unlink(e)
	c.pushFront(e)
	return e
}

// put stores st for text and returns its entry, in use. If another caller
// stored the text first, st is closed and theirs is returned.
func (c *stmtCache) put(text string, st *sql.Stmt) *stmtEntry {
	var closing []*sql.Stmt
	defer func() {
		for _, s := range closing {
			_ = s.Close()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[text]; e != nil {
		closing = append(closing, st)
		e.refs++
		c.unlink(e)
		c.pushFront(e)
		return e
	}
	e := &stmtEntry{text: text, st: st, refs: 1}
	if c.closed {
		e.evicted = true // used once, closed by its release
		return e
	}
	c.m[text] = e
	c.pushFront(e)
	for len(c.m) > c.max {
		old := c.lru.prev
		c.unlink(old)
		delete(c.m, old.text)
		old.evicted = true
		if old.refs == 0 {
			closing = append(closing, old.st)
		}
	}
	return e
}

// release ends one use of e, closing it if it was evicted meanwhile.
// database/sql keeps the statement alive for rows still open.
func (c *stmtCache) release(e *stmtEntry) {
	c.mu.Lock()
	e.refs--
	closeIt := e.refs == 0 && e.evicted
	c.mu.Unlock()
	if closeIt {
		_ = e.st.Close()
	}
}

func (c *stmtCache) unlink(e *stmtEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *stmtCache) pushFront(e *stmtEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

// len is the number of cached statements.
func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// close closes every cached statement; statements in use are closed by
// their last user. Later queries use the cache no more.
func (c *stmtCache) close() {
	c.mu.Lock()
	var closing []*sql.Stmt
	for text, e := range c.m {
		delete(c.m, text)
		c.unlink(e)
		e.evicted = true
		if e.refs == 0 {
			closing = append(closing, e.st)
		}
	}
	c.closed = true
	c.mu.Unlock()
	for _, st := range closing {
		_ = st.Close()
	}
}

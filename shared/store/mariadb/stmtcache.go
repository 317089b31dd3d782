package mariadb

import (
	"context"
	"database/sql"
	"sync"
)

// maxStatements bounds the prepared statements kept per server. Reads of
// one template differ only in their filter's shape, so a node sees few
// distinct statements; past the bound, statements run unprepared.
const maxStatements = 512

// stmtCache keeps one prepared statement per SQL text for a pool.
// database/sql prepares it on each connection as the connection first
// runs it and re-prepares after a reconnect, so a point read costs one
// execute round trip in the binary protocol instead of a text query.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// query runs text with args, prepared when the cache has room. text is
// only read during the call.
func (c *stmtCache) query(ctx context.Context, text []byte, args ...any) (*sql.Rows, error) {
	c.mu.RLock()
	st := c.m[string(text)]
	full := len(c.m) >= maxStatements
	c.mu.RUnlock()
	if st == nil && !full {
		var err error
		if st, err = c.prepare(ctx, string(text)); err != nil {
			return nil, err
		}
	}
	if st == nil {
		return c.db.QueryContext(ctx, string(text), args...)
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) prepare(ctx context.Context, text string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[text]; st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	c.m[text] = st
	return st, nil
}

// close closes every prepared statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for text, st := range c.m {
		_ = st.Close()
		delete(c.m, text)
	}
}

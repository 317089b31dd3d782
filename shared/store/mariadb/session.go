package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
)

// A session is one write transaction on one connection of the primary.
// Its statements are queued and sent with the next statement that returns
// rows (query) or when flushed: joined into one text, one round trip, when
// the pool sends several statements at once (values bound client side,
// multiStatements), or else one by one on the connection. They are the
// same statements either way; only the round trips differ.
//
// A session opens its transaction with START TRANSACTION (queued by
// begin) and ends it with COMMIT (commit) or, whatever went wrong,
// ROLLBACK (end): a connection goes back to the pool only outside a
// transaction, or is closed. A session of acquire sends no START
// TRANSACTION: its one statement, a create's CALL, begins and commits its
// own, and end rolls back whatever that left open unless the caller says
// it finished (open = false).
type session struct {
	conn  *sql.Conn
	multi bool
	open  bool // START TRANSACTION was sent and no COMMIT or ROLLBACK since
	pend  []string
	args  []any
	n     []int // values of each queued statement
}

// begin takes a connection of the primary and queues the start of a
// transaction.
func (s *Store) begin(ctx context.Context) (*session, error) {
	conn, err := s.primary.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("primary: %w", err)
	}
	w := &session{conn: conn, multi: s.multi}
	w.queue("START TRANSACTION")
	return w, nil
}

// acquire takes a connection of the primary for one statement that opens
// and ends its own transaction, a create procedure's CALL. The session
// counts as open, so end sends ROLLBACK unless the caller marks it closed
// after the statement succeeded.
func (s *Store) acquire(ctx context.Context) (*session, error) {
	conn, err := s.primary.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("primary: %w", err)
	}
	return &session{conn: conn, multi: s.multi, open: true}, nil
}

// queue adds a statement to go with the next round trip.
func (w *session) queue(text string, args ...any) {
	w.pend = append(w.pend, text)
	w.args = append(w.args, args...)
	w.n = append(w.n, len(args))
}

// query sends the queued statements and text, and returns the rows of
// text, the only one of them that may return any.
func (w *session) query(ctx context.Context, text string, args ...any) (*sql.Rows, error) {
	if !w.multi {
		if err := w.flush(ctx); err != nil {
			return nil, err
		}
		return w.conn.QueryContext(ctx, text, args...)
	}
	w.queue(text, args...)
	joined, all := w.take()
	w.started(joined)
	rows, err := w.conn.QueryContext(ctx, joined, all...)
	if err != nil {
		return nil, err
	}
	if err := firstSet(rows); err != nil {
		rows.Close() // else it holds the connection
		return nil, err
	}
	return rows, nil
}

// flush sends the queued statements.
func (w *session) flush(ctx context.Context) error {
	if len(w.pend) == 0 {
		return nil
	}
	if w.multi {
		joined, all := w.take()
		w.started(joined)
		_, err := w.conn.ExecContext(ctx, joined, all...)
		return err
	}
	texts, args, counts := w.pend, w.args, w.n
	w.pend, w.args, w.n = nil, nil, nil
	for i, text := range texts {
		w.started(text)
		if _, err := w.conn.ExecContext(ctx, text, args[:counts[i]]...); err != nil {
			return err
		}
		args = args[counts[i]:]
	}
	return nil
}

// take returns the queued statements as one text and their values, and
// empties the queue.
func (w *session) take() (string, []any) {
	text, args := strings.Join(w.pend, ";\n"), w.args
	w.pend, w.args, w.n = w.pend[:0], nil, w.n[:0]
	return text, args
}

// started notes that text, about to be sent, opens the transaction.
func (w *session) started(text string) {
	if strings.HasPrefix(text, "START TRANSACTION") {
		w.open = true
	}
}

// firstSet moves rows to the first result set that has columns: the
// statements before a query's own return none.
func firstSet(rows *sql.Rows) error {
	for {
		if cols, err := rows.Columns(); err != nil || len(cols) > 0 {
			return err
		}
		if !rows.NextResultSet() {
			return rows.Err()
		}
	}
}

// record queues the insert of event, with its result, into beds_events:
// it fails with a duplicate key when the event was recorded before.
func (w *session) record(ctx context.Context, event, tmpl, op string, affected int64, key any) {
	w.queue(withLimit(ctx, boundRecord), event, tmpl, op, affected, key)
}

// commit queues COMMIT and sends everything queued.
func (w *session) commit(ctx context.Context) error {
	w.queue("COMMIT")
	if err := w.flush(ctx); err != nil {
		return err
	}
	w.open = false
	return nil
}

// end rolls back a transaction still open and gives the connection back;
// a connection whose rollback fails is closed instead, so no transaction
// reaches the pool. Ending an ended session does nothing.
func (w *session) end(ctx context.Context) {
	if w.conn == nil {
		return
	}
	if w.open {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := w.conn.ExecContext(rctx, "ROLLBACK")
		cancel()
		if err != nil {
			_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		w.open = false
	}
	_ = w.conn.Close()
	w.conn = nil
}

package mariadb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// BEDS's own objects of deploy/mariadb/000_beds.sql.
const (
	eventsTable = "beds_events" // records applied write events
	recordProc  = "beds_record" // inserts the record of a write, for a procedure that calls it
	eventParam  = "beds_event"  // a write procedure's first parameter: the event ID
	setParam    = "beds_set"    // an update procedure's second parameter: the fields the request sets
	eventChars  = 200           // characters of an event ID beds_events holds
)

// insertRecord returns the insert of an event's record into beds_events,
// from the SQL expressions of its event ID, template, op, rows affected
// and key: the one row every write records, whether the node inserts it
// (boundRecord), a generated procedure (recordSQL) or beds_record.
func insertRecord(event, tmpl, op, affected, key string) string {
	return "INSERT INTO `" + eventsTable + "` (evt_id, evt_template, evt_op, evt_affected, evt_key) VALUES (" +
		strings.Join([]string{event, tmpl, op, affected, key}, ", ") + ")"
}

// boundRecord is the node's own insert of a record, its values bound.
var boundRecord = insertRecord("?", "?", "?", "?", "?")

// write runs a create, update or delete exactly once per event ID.
//
// One transaction runs the write and then inserts its event ID, with the
// result, into beds_events (its primary key), and commits: the write and
// its record commit together or not at all. The transaction of a create,
// and of an update or delete by key, is its procedure's own: the
// procedure takes the event ID first, begins, writes the row, records the
// event (its insert into beds_events) and commits, so the write is one
// statement, CALL, in one round trip (callOnce). The guarantee is the one of BEDS's
// transaction around the CALL and the record, but MariaDB's cost of a
// write is mostly per top-level statement (parsing, results): the one
// CALL costs it much less than the four or five statements of BEDS's
// transaction (START TRANSACTION, a locking read, CALL, INSERT, COMMIT,
// in two round trips).
// BenchmarkCreateServer measures a create both ways; docs/performance.md
// has the figures. The transaction of an update or delete by another
// filter is BEDS's.
//
// A request whose event was recorded before fails that insert with a
// duplicate key and rolls back what it just did, and the recorded result
// is answered instead. A second delivery racing the first waits on the
// first's locks (the rows it wrote, or the event's row) and, once the
// first commits, fails the same way. A write that fails for any reason is
// answered from the record when there is one (its own earlier delivery
// made the conflict it met), and otherwise with its error: it rolled back,
// recorded nothing, and the same request fails the same way when it comes
// again.
//
// An update or delete by filter takes two round trips where the pool
// sends several statements at once (session): START TRANSACTION with its
// locking read, then its CALLs, the record and COMMIT.
func (s *Store) write(ctx context.Context, q *store.Query) (res *store.Result, err error) {
	if q.Op == wire.OpCreate || byKey(q) {
		return s.callOnce(ctx, q)
	}
	w, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.Op, err)
	}
	defer w.end(ctx)
	res, err = w.apply(ctx, q)
	if err == nil {
		if err = w.commit(ctx); err != nil {
			err = fmt.Errorf("%s: commit: %w", q.Op, err)
		}
	}
	if err != nil {
		w.end(ctx)
		return s.settle(ctx, q, err)
	}
	return res, nil
}

// callOnce runs a create, or an update or delete by key, as one
// statement, its procedure's CALL, which records the event in the
// procedure's own transaction. On any error the connection gets a
// ROLLBACK before it goes back to the pool (session.end): a statement
// time limit or a killed query can end the procedure before its handler
// rolls back. A write that failed is answered from its event's record
// when one is committed: a redelivery fails the record's insert with a
// duplicate key. An update or delete of a key with no row
// records nothing and is not_found, or is answered from the record of an
// earlier delivery (which deleted the row, or after which it went).
func (s *Store) callOnce(ctx context.Context, q *store.Query) (*store.Result, error) {
	w, err := s.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.Op, err)
	}
	defer w.end(ctx)
	res, err := w.call(ctx, q)
	if err != nil {
		w.end(ctx)
		return s.settle(ctx, q, err)
	}
	w.open = false // the procedure committed
	return res, nil
}

// settle answers a write that failed with err: from its event's record if
// one is committed, else with err.
func (s *Store) settle(ctx context.Context, q *store.Query, err error) (*store.Result, error) {
	res, found, rerr := s.recorded(ctx, q)
	switch {
	case isConflict(rerr): // the event was used by another write
		return nil, rerr
	case rerr != nil:
		return nil, errors.Join(err, rerr)
	case found:
		return res, nil
	}
	return nil, err
}

// apply runs q in the session's transaction and, for an update or delete
// by filter, queues the record of its event and result; the procedure of
// a create, or of an update or delete by key, records its event itself,
// in the session's transaction that holds its call. The caller commits.
func (w *session) apply(ctx context.Context, q *store.Query) (*store.Result, error) {
	if q.Op == wire.OpCreate || byKey(q) {
		return w.call(ctx, q)
	}
	res, err := w.change(ctx, q)
	if err != nil {
		return nil, err
	}
	var key any
	if res.Key != nil {
		b, err := json.Marshal(res.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: encode key: %w", q.Op, err)
		}
		key = string(b)
	}
	w.record(ctx, q.Event, q.Template.Name, string(q.Op), res.Affected, key)
	return res, nil
}

// ExecBatch implements store.Batcher: the writes run in one transaction,
// each as write runs it (the write, then its record; the procedure of a
// create, or of an update or delete by key, sees the batch's transaction
// open and records in it, without a commit of its own), then the batch's
// own event is recorded and the transaction commits once. A write that
// fails rolls back the batch; a batch whose event was recorded before is
// answered from the records of its writes.
func (s *Store) ExecBatch(ctx context.Context, event string, writes []*store.Query) (res []*store.Result, err error) {
	w, err := s.begin(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("batch: %w", err), nil)
	}
	defer w.end(ctx)
	// Each write's record goes with the next write's first statement, the
	// last one's with the batch's record and the commit.
	res = make([]*store.Result, len(writes))
	for i, q := range writes {
		if res[i], err = w.apply(ctx, q); err != nil {
			w.end(ctx)
			return s.settleBatch(ctx, event, writes, &store.BatchError{Index: i, Err: classify(err, q.Template)})
		}
	}
	w.record(ctx, event, "", string(wire.OpBatch), int64(len(writes)), nil)
	if err = w.commit(ctx); err != nil {
		w.end(ctx)
		last := len(writes) - 1
		return s.settleBatch(ctx, event, writes, &store.BatchError{Index: last, Err: classify(fmt.Errorf("batch: commit: %w", err), writes[last].Template)})
	}
	return res, nil
}

// settleBatch answers a batch that failed with err: from the records of
// its writes if the batch's event is committed, else with err.
func (s *Store) settleBatch(ctx context.Context, event string, writes []*store.Query, err error) ([]*store.Result, error) {
	var op string
	var n int
	rerr := s.primary.QueryRowContext(ctx, withLimit(ctx, "SELECT evt_op, evt_affected FROM `"+eventsTable+"` WHERE evt_id = ?"), event).Scan(&op, &n)
	switch {
	case errors.Is(rerr, sql.ErrNoRows):
		// The batch was not applied. A write's record that went with the
		// failed round trip may have failed instead of the write: its
		// event is recorded, by another request that used its ID.
		var be *store.BatchError
		if errors.As(err, &be) {
			for j := 0; j <= be.Index; j++ {
				if _, found, ferr := s.recorded(ctx, writes[j]); (ferr == nil && found) || ferr != nil && isConflict(ferr) {
					return nil, &store.BatchError{Index: j, Err: &wire.Error{Code: wire.CodeConflict,
						Message: fmt.Sprintf("event %s was already used by another request: event IDs must be unique", writes[j].Event)}}
				}
			}
		}
		return nil, err
	case rerr != nil:
		return nil, errors.Join(err, classify(fmt.Errorf("batch: read recorded event %s: %w", event, rerr), nil))
	case op != string(wire.OpBatch) || n != len(writes):
		return nil, &wire.Error{Code: wire.CodeConflict,
			Message: fmt.Sprintf("event %s was already used for another request (%s): event IDs must be unique", event, op)}
	}
	res := make([]*store.Result, len(writes))
	for i, q := range writes {
		r, found, err := s.recorded(ctx, q)
		if err == nil && !found {
			err = fmt.Errorf("batch %s is recorded but its write %s is not", event, q.Event)
		}
		if err != nil {
			return nil, &store.BatchError{Index: i, Err: classify(err, q.Template)}
		}
		res[i] = r
	}
	return res, nil
}

// isConflict reports whether err is a conflict of the contract.
func isConflict(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == wire.CodeConflict
}

// recorded returns the result the first delivery of q committed, if its
// event is recorded; an event recorded for another write is a conflict.
func (s *Store) recorded(ctx context.Context, q *store.Query) (*store.Result, bool, error) {
	var tmpl, op string
	var affected int64
	var key sql.NullString
	err := s.primary.QueryRowContext(ctx,
		withLimit(ctx, "SELECT evt_template, evt_op, evt_affected, evt_key FROM `"+eventsTable+"` WHERE evt_id = ?"), q.Event).
		Scan(&tmpl, &op, &affected, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify(fmt.Errorf("%s: read recorded event %s: %w", q.Op, q.Event, err), nil)
	}
	if tmpl != q.Template.Name || op != string(q.Op) {
		return nil, false, &wire.Error{Code: wire.CodeConflict,
			Message: fmt.Sprintf("event %s was already used for %s on %s: event IDs must be unique", q.Event, op, tmpl)}
	}
	res := &store.Result{Affected: affected, Replayed: true}
	if key.Valid {
		res.Key = decodeKey(q.Template.Key, key.String)
	}
	return res, true, nil
}

func decodeKey(f *template.Field, s string) any {
	var v any
	if f.Type == template.TypeInt {
		var n int64
		if json.Unmarshal([]byte(s), &n) == nil {
			return n
		}
	}
	if json.Unmarshal([]byte(s), &v) == nil {
		return v
	}
	return s
}

package mariadb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// eventsTable records applied write events (deploy/mariadb/000_beds.sql).
const eventsTable = "beds_events"

// write runs a create, update or delete exactly once per event ID.
//
// The transaction first inserts the event ID into beds_events (its primary
// key), then runs the write, then stores the result on that row and
// commits. A redelivered request fails the insert with a duplicate key, so
// its write never runs again: the stored result is answered instead. A
// second delivery racing the first waits on the row lock and sees the
// first one's outcome: its result if it committed, a clean slate if it
// rolled back. A write that fails rolls back its event row with it, so the
// same request fails the same way when it comes again.
//
// It takes two round trips where the pool sends several statements at
// once (session): START TRANSACTION, the event's insert and the write's
// first statement (a create's CALL, an update's or delete's locking read);
// then the update's or delete's CALLs, the result's record and COMMIT.
func (s *Store) write(ctx context.Context, q *store.Query) (res *store.Result, err error) {
	w, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.Op, err)
	}
	defer w.end(ctx)
	res, err = w.apply(ctx, q)
	if errors.Is(err, errReplay) {
		w.end(ctx)
		return s.replay(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	if err = w.commit(ctx); err != nil {
		return nil, fmt.Errorf("%s: commit: %w", q.Op, err)
	}
	return res, nil
}

// errReplay says a write's event is already recorded: it was applied.
var errReplay = errors.New("event already recorded")

// apply records q's event and runs q in the session's transaction, and
// queues the record of its result; the caller commits. An event recorded
// before returns errReplay, having run nothing.
func (w *session) apply(ctx context.Context, q *store.Query) (*store.Result, error) {
	w.record(ctx, q.Event, q.Template.Name, string(q.Op), 0)
	var res *store.Result
	var err error
	if q.Op == wire.OpCreate {
		res, err = w.create(ctx, q)
	} else {
		res, err = w.change(ctx, q)
	}
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errDupEntry {
			// The event's insert and the write went in one round trip:
			// whose key was duplicated?
			last, rerr := w.recorded(ctx)
			if rerr != nil {
				return nil, fmt.Errorf("%s: after %w: %w", q.Op, err, rerr)
			}
			if last != q.Event {
				return nil, errReplay
			}
		}
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
	w.queue(withLimit(ctx, "UPDATE `"+eventsTable+"` SET evt_affected = ?, evt_key = ? WHERE evt_id = ?"),
		res.Affected, key, q.Event)
	return res, nil
}

// ExecBatch implements store.Batcher: the writes run in one transaction
// that first records the batch's own event, then each write as write
// does (its event, the write, its result), and commits once. A batch
// whose event is recorded is answered from the records of its writes; a
// write that fails rolls back the batch, its event included, so the same
// batch fails the same way when it comes again.
func (s *Store) ExecBatch(ctx context.Context, event string, writes []*store.Query) (res []*store.Result, err error) {
	w, err := s.begin(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("batch: %w", err), nil)
	}
	defer w.end(ctx)
	w.record(ctx, event, "", string(wire.OpBatch), len(writes))
	res = make([]*store.Result, len(writes))
	for i, q := range writes {
		res[i], err = w.apply(ctx, q)
		if errors.Is(err, errReplay) && i == 0 {
			last, rerr := w.recorded(ctx)
			if rerr != nil {
				return nil, classify(fmt.Errorf("batch: %w", rerr), nil)
			}
			if last != event { // the batch's own insert failed: it was applied
				w.end(ctx)
				return s.replayBatch(ctx, event, writes)
			}
		}
		if errors.Is(err, errReplay) {
			err = &wire.Error{Code: wire.CodeConflict,
				Message: fmt.Sprintf("event %s was already used by another request: event IDs must be unique", q.Event)}
		}
		if err != nil {
			return nil, &store.BatchError{Index: i, Err: classify(err, q.Template)}
		}
	}
	if err = w.commit(ctx); err != nil {
		return nil, classify(fmt.Errorf("batch: commit: %w", err), nil)
	}
	return res, nil
}

// replayBatch answers a redelivered batch with the results its first
// delivery committed.
func (s *Store) replayBatch(ctx context.Context, event string, writes []*store.Query) ([]*store.Result, error) {
	var op string
	var n int
	err := s.primary.QueryRowContext(ctx, withLimit(ctx, "SELECT evt_op, evt_affected FROM `"+eventsTable+"` WHERE evt_id = ?"), event).Scan(&op, &n)
	if err != nil {
		return nil, classify(fmt.Errorf("batch: read recorded event %s: %w", event, err), nil)
	}
	if op != string(wire.OpBatch) || n != len(writes) {
		return nil, &wire.Error{Code: wire.CodeConflict,
			Message: fmt.Sprintf("event %s was already used for another request (%s): event IDs must be unique", event, op)}
	}
	res := make([]*store.Result, len(writes))
	for i, q := range writes {
		if res[i], err = s.replay(ctx, q); err != nil {
			return nil, &store.BatchError{Index: i, Err: classify(err, q.Template)}
		}
	}
	return res, nil
}

// replay answers a redelivered write with the result its first delivery
// committed.
func (s *Store) replay(ctx context.Context, q *store.Query) (*store.Result, error) {
	var tmpl, op string
	var affected int64
	var key sql.NullString
	err := s.primary.QueryRowContext(ctx,
		withLimit(ctx, "SELECT evt_template, evt_op, evt_affected, evt_key FROM `"+eventsTable+"` WHERE evt_id = ?"), q.Event).
		Scan(&tmpl, &op, &affected, &key)
	if err != nil {
		return nil, fmt.Errorf("%s: read recorded event %s: %w", q.Op, q.Event, err)
	}
	if tmpl != q.Template.Name || op != string(q.Op) {
		return nil, &wire.Error{Code: wire.CodeConflict,
			Message: fmt.Sprintf("event %s was already used for %s on %s: event IDs must be unique", q.Event, op, tmpl)}
	}
	res := &store.Result{Affected: affected, Replayed: true}
	if key.Valid {
		res.Key = decodeKey(q.Template.Key, key.String)
	}
	return res, nil
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

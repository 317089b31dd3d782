package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

// eventsCollection records applied write events, keyed by event ID.
const eventsCollection = "beds_events"

type eventRecord struct {
	ID       string    `bson:"_id"`
	Template string    `bson:"template"`
	Op       string    `bson:"op"`
	Affected int64     `bson:"affected"`
	Key      any       `bson:"key,omitempty"`
	At       time.Time `bson:"at"`
}

// write runs a create, update or delete at most once per event ID.
//
// A create whose key is generated uses the event ID as _id, so a
// redelivery collides with the document the first delivery made and is
// answered with the same result: no extra round trip. Every other write
// looks its event up in beds_events first (an _id lookup) and records
// itself there once applied. Without multi-document transactions the
// record follows the write: a node that dies between the two leaves a
// write whose redelivery runs again. That is safe for update ($set of the
// same values) and delete (the documents are already gone: the retry
// answers not_found), and for a create with a caller-chosen key the retry
// answers conflict. Nothing is ever applied twice with a different effect.
func (s *Store) write(ctx context.Context, q *store.Query, run func(context.Context, *store.Query) (*store.Result, error)) (*store.Result, error) {
	events := s.db.Collection(eventsCollection)
	generatedKey := q.Op == wire.OpCreate && !hasKey(q)
	if !generatedKey {
		var rec eventRecord
		err := events.FindOne(ctx, bson.D{{Key: "_id", Value: q.Event}}).Decode(&rec)
		switch {
		case err == nil:
			return replayed(q, rec)
		case !errors.Is(err, mongo.ErrNoDocuments):
			return nil, fmt.Errorf("look up event %s: %w", q.Event, err)
		}
	}
	res, err := run(ctx, q)
	if err != nil {
		if generatedKey && mongo.IsDuplicateKeyError(err) {
			n, cerr := s.coll(q.Template).CountDocuments(ctx, bson.D{{Key: q.Template.Key.Stored, Value: q.Event}})
			if cerr == nil && n == 1 {
				return &store.Result{Affected: 1, Key: q.Event, Replayed: true}, nil
			}
		}
		return nil, err
	}
	if generatedKey {
		return res, nil
	}
	rec := eventRecord{ID: q.Event, Template: q.Template.Name, Op: string(q.Op), Affected: res.Affected, Key: res.Key, At: time.Now().UTC()}
	// The write is applied whatever happens to its record: answer the
	// truth. Without the record a redelivery runs the write again, which
	// is safe as described above.
	_, _ = events.InsertOne(ctx, rec)
	return res, nil
}

func hasKey(q *store.Query) bool {
	for _, a := range q.Data {
		if a.Field == q.Template.Key {
			return true
		}
	}
	return false
}

func replayed(q *store.Query, rec eventRecord) (*store.Result, error) {
	if rec.Template != q.Template.Name || rec.Op != string(q.Op) {
		return nil, &wire.Error{Code: wire.CodeConflict,
			Message: fmt.Sprintf("event %s was already used for %s on %s: event IDs must be unique", q.Event, rec.Op, rec.Template)}
	}
	res := &store.Result{Affected: rec.Affected, Key: rec.Key, Replayed: true}
	if n, ok := rec.Key.(int32); ok {
		res.Key = int64(n)
	}
	return res, nil
}

package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

// eventsCollection records write events, keyed by event ID.
const eventsCollection = "beds_events"

// States of an event record.
const (
	stateClaimed = "claimed" // an attempt is applying the write
	stateDone    = "done"    // applied; the record holds the result
	// A takeover marker (see takeOver) is not an event record.
	stateTakeover = "takeover"
)

// ClaimGrace is how long after its holder's deadline a claim on an event
// may be taken over. The holder stops by its deadline (its context ends
// there and every command carries maxTimeMS up to it), so the grace only
// has to cover the server noticing maxTimeMS, recording the outcome
// (settleTimeout) and the skew between the nodes' clocks.
const ClaimGrace = 30 * time.Second

// settleTimeout bounds recording the outcome of a write, which runs after
// the write on a context of its own: the request's may just have ended.
const settleTimeout = 5 * time.Second

// Polling of a claim another attempt holds: from the first to the longest
// pause.
const (
	claimPollFirst = 5 * time.Millisecond
	claimPollMax   = 100 * time.Millisecond
)

// stampField is the field every create and update sets on the documents
// it writes: the event ID of the last write that touched the document. A
// takeover reads it to tell what its dead predecessor already wrote.
// No template may store a field under a name starting with _beds
// (template.Parse refuses it), so the stamp never meets a template field.
const stampField = "_beds_event"

// eventRecord is one document of beds_events. Records written before
// claims existed have no state; they were written once the write was
// applied, so they count as done.
type eventRecord struct {
	ID       string    `bson:"_id"`
	Template string    `bson:"template"`
	Op       string    `bson:"op"`
	State    string    `bson:"state,omitempty"`
	Owner    string    `bson:"owner,omitempty"`   // the attempt holding the claim
	Claimed  time.Time `bson:"claimed,omitempty"` // when it was claimed, by the holder's clock
	Until    time.Time `bson:"until,omitempty"`   // the holder's deadline
	Affected int64     `bson:"affected"`
	Key      any       `bson:"key,omitempty"`
	At       time.Time `bson:"at"` // when the record last changed
	// IDs is the target of a claimed update or delete: the _ids of the
	// documents it writes, found before the claim. Absent when the write
	// changes nothing (none matched, or too many), and once it is done.
	IDs []bson.RawValue `bson:"ids,omitempty"`
}

// claim is an attempt's hold on an event.
type claim struct {
	owner    string
	until    time.Time
	takeover bool // an earlier attempt held the event and did not finish
	// ids are the _ids an update or delete found matching (at most
	// MaxAffected+1), or, when resume is set, the target an earlier
	// holder recorded, some of which it may have written.
	ids    []bson.RawValue
	resume bool
}

// write applies a create, update or delete at most once per event ID,
// without transactions, by claiming the event first:
//
//  1. Target: an update or delete reads the _ids of the documents it
//     will write (at most MaxAffected+1: see matching and bounded).
//  2. Claim: insert the event's record in beds_events with the event ID
//     as _id, state "claimed", a random owner token, the attempt's
//     deadline (until) and the target's _ids. The unique _id lets exactly
//     one attempt in.
//  3. Write, within the deadline, on the filter and the target's _ids,
//     stamping every document created or updated with the event ID
//     (stampField).
//  4. Settle: on success, set the record to "done" with the result. On a
//     failure that leaves nothing to undo (settled), delete the record,
//     so the event may run again as if it had never come; after any other
//     failure (timeout, connection lost: the write may have applied) the
//     record stays claimed until it expires. A takeover finishing a dead
//     holder's target (below) that the server stops keeps the record,
//     the only account of that target, expired at once.
//
// An attempt that finds the record done answers its result (Replayed).
// One that finds it claimed waits, polling, until it is done (answered
// from it), gone (claim it again) or expired, or until its own context
// ends (timeout). A claim expires ClaimGrace after its until; then
// exactly one attempt takes it over (see takeOver) and finishes the
// holder's write, which may have applied in part or whole:
//
//   - create: a document with the key and the event's stamp is the
//     holder's: answer it (affected 1, its key) without inserting. Else
//     insert, unless the key is taken (conflict, saying an earlier attempt
//     may have made the record: one made by the holder and since updated
//     by another event carries that event's stamp).
//   - update: the recorded documents carrying the event's stamp are the
//     holder's and are not written again; the others are updated if they
//     still match the filter. affected counts both.
//   - delete: the recorded documents still matching the filter are
//     deleted; affected counts the recorded documents now gone.
//
// A takeover never re-evaluates the filter on other documents than the
// holder's target, so a write applies to one set of documents whoever
// finishes it, and never answers not_found for documents the holder
// changed. What it cannot tell apart: a recorded document the holder
// updated or deleted and another event then changed again (updated so it
// no longer matches, deleted, or re-created under the same _id) looks
// like one the holder never reached. A claim made before targets were
// recorded has none; its takeover runs the write anew, as a first attempt.
//
// So two attempts never write at once: one holds the claim, and a
// takeover starts only after the holder has stopped, provided the nodes'
// clocks agree to within ClaimGrace less settleTimeout.
func (s *Store) write(ctx context.Context, q *store.Query, run func(context.Context, *store.Query, *claim) (*store.Result, error)) (*store.Result, error) {
	if q.Event == "" {
		return nil, fmt.Errorf("%s on %s: no event ID: a write needs one to be applied once", q.Op, q.Template.Name)
	}
	if _, ok := ctx.Deadline(); !ok {
		// A claim must say when its holder stops.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultOpTimeout)
		defer cancel()
	}
	c, res, err := s.claim(ctx, q)
	if c == nil {
		return res, err
	}
	if c.takeover && !c.resume && q.Op != wire.OpCreate {
		// The holder recorded no target: it wrote nothing. Find one now,
		// the wait may have made ours stale, and record it for whoever
		// takes over from this attempt.
		err = s.retarget(ctx, q, c)
	}
	if err == nil {
		res, err = run(ctx, q, c)
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	events := s.db.Collection(eventsCollection)
	mine := bson.D{{Key: "_id", Value: q.Event}, {Key: "owner", Value: c.owner}, {Key: "state", Value: stateClaimed}}
	if err != nil {
		var we *wire.Error
		switch {
		case settled(err) && c.resume && !errors.As(err, &we):
			// The server stopped a resumed write, perhaps part way: only
			// the record knows the target of the dead holder's writes. Keep
			// it, and since nothing is running let the next delivery take
			// it over at once.
			_, _ = events.UpdateOne(sctx, mine, bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: time.Unix(0, 0).UTC()}}}})
		case settled(err):
			// If this fails the claim expires instead.
			_, _ = events.DeleteOne(sctx, mine)
		}
		if c.takeover && mongo.IsDuplicateKeyError(err) && q.Op == wire.OpCreate {
			return nil, keyTakenOnTakeover(q)
		}
		return nil, err
	}
	done := bson.D{{Key: "state", Value: stateDone}, {Key: "affected", Value: res.Affected}, {Key: "at", Value: time.Now().UTC()}}
	if res.Key != nil {
		done = append(done, bson.E{Key: "key", Value: res.Key})
	}
	// The write is applied whatever happens to its record: answer the
	// truth. Unrecorded, the claim expires and a later delivery takes it
	// over, as described above.
	_, _ = events.UpdateOne(sctx, mine, bson.D{{Key: "$set", Value: done}, {Key: "$unset", Value: bson.D{{Key: "ids", Value: ""}}}})
	return res, nil
}

// keyTakenOnTakeover is the answer of a taken-over create whose key is
// taken by a document without the event's stamp.
func keyTakenOnTakeover(q *store.Query) error {
	return wire.Errorf(wire.CodeConflict,
		"a %s record with that key already exists; an earlier attempt of event %s, which did not finish, may have created it", q.Template.Name, q.Event)
}

// target is what the claim of q records: the _ids the write will change,
// nil when it will change nothing (none, or more than q.MaxAffected).
func target(q *store.Query, ids []bson.RawValue) []bson.RawValue {
	if len(ids) == 0 || (q.MaxAffected > 0 && len(ids) > q.MaxAffected) {
		return nil
	}
	return ids
}

// retarget finds the _ids q matches now and records them in c's claim.
func (s *Store) retarget(ctx context.Context, q *store.Query, c *claim) error {
	ids, err := s.matching(ctx, q)
	if err != nil {
		return err
	}
	c.ids = ids
	if t := target(q, ids); t != nil {
		_, err := s.db.Collection(eventsCollection).UpdateOne(ctx,
			bson.D{{Key: "_id", Value: q.Event}, {Key: "owner", Value: c.owner}, {Key: "state", Value: stateClaimed}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "ids", Value: t}}}})
		if err != nil {
			return fmt.Errorf("record the target of event %s: %w", q.Event, err)
		}
	}
	return nil
}

// claim claims q's event for a new attempt. It returns the claim, or nil
// and the answer: the recorded result of an earlier attempt, or an error
// (a conflict when the event ID was used for another write, the context's
// end while another attempt holds the claim).
func (s *Store) claim(ctx context.Context, q *store.Query) (*claim, *store.Result, error) {
	events := s.db.Collection(eventsCollection)
	until, _ := ctx.Deadline()
	c := &claim{owner: newOwner(), until: until.UTC()}
	pause := claimPollFirst
	for {
		if q.Op != wire.OpCreate {
			// Found before the claim so that the claim's insert records
			// it; found again if the event is released while we wait.
			ids, err := s.matching(ctx, q)
			if err != nil {
				return nil, nil, err
			}
			c.ids = ids
		}
		now := time.Now().UTC()
		_, err := events.InsertOne(ctx, eventRecord{ID: q.Event, Template: q.Template.Name, Op: string(q.Op),
			State: stateClaimed, Owner: c.owner, Claimed: now, Until: c.until, At: now, IDs: target(q, c.ids)})
		if err == nil {
			return c, nil, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, nil, fmt.Errorf("claim event %s: %w", q.Event, err)
		}
	wait:
		for {
			var rec eventRecord
			err = events.FindOne(ctx, bson.D{{Key: "_id", Value: q.Event}}).Decode(&rec)
			switch {
			case errors.Is(err, mongo.ErrNoDocuments):
				break wait // released meanwhile: claim it again
			case err != nil:
				return nil, nil, fmt.Errorf("read event %s: %w", q.Event, err)
			case rec.Template != q.Template.Name || rec.Op != string(q.Op):
				return nil, nil, wire.Errorf(wire.CodeConflict,
					"event %s was already used for %s on %s: event IDs must be unique", q.Event, rec.Op, rec.Template)
			case rec.State != stateClaimed:
				return nil, replayed(rec), nil
			case expired(rec):
				won, err := s.takeOver(ctx, q, rec, c)
				if err != nil {
					return nil, nil, err
				}
				if won {
					// The target never changes while the record lives.
					c.takeover = true
					if len(rec.IDs) > 0 {
						c.ids, c.resume = rec.IDs, true
					}
					return c, nil, nil
				}
			}
			select {
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return nil, nil, wire.Errorf(wire.CodeTimeout,
						"event %s is being applied by another delivery, which had not finished by the deadline", q.Event)
				}
				return nil, nil, ctx.Err()
			case <-time.After(pause):
			}
			pause = min(2*pause, claimPollMax)
		}
	}
}

// expired reports whether a claim (or a takeover marker) is past its
// holder's deadline by more than ClaimGrace.
func expired(rec eventRecord) bool { return time.Now().After(rec.Until.Add(ClaimGrace)) }

// takeoverID names the marker of the takeover of owner's claim on event.
func takeoverID(event, owner string) string { return "takeover/" + event + "/" + owner }

// takeOver tries to take over rec, an expired claim, for c, and reports
// whether it did; false means another attempt is taking it over or the
// record changed (look again).
//
// A takeover inserts a marker named after the owner it replaces, so of
// all attempts that see the same expired claim exactly one gets in: a
// conditional update of the claim would do on MongoDB, but not on every
// MongoDB-wire server (FerretDB's is not atomic), while a unique _id is.
// The winner then makes the claim its own. A winner that dies before that
// leaves its marker, which expires like a claim: the next attempt follows
// the markers to the last expired owner and takes over from it.
func (s *Store) takeOver(ctx context.Context, q *store.Query, rec eventRecord, c *claim) (bool, error) {
	events := s.db.Collection(eventsCollection)
	prev := rec.Owner
	for {
		now := time.Now().UTC()
		id := takeoverID(q.Event, prev)
		_, err := events.InsertOne(ctx, eventRecord{ID: id, Template: q.Template.Name, Op: string(q.Op),
			State: stateTakeover, Owner: c.owner, Claimed: now, Until: c.until, At: now})
		if mongo.IsDuplicateKeyError(err) {
			var m eventRecord
			err := events.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
			switch {
			case errors.Is(err, mongo.ErrNoDocuments):
				continue
			case err != nil:
				return false, fmt.Errorf("take over event %s: %w", q.Event, err)
			case !expired(m):
				return false, nil
			}
			prev = m.Owner
			continue
		}
		if err != nil {
			return false, fmt.Errorf("take over event %s: %w", q.Event, err)
		}
		// Every owner before this one has expired, so the claim is ours
		// unless it was settled meanwhile.
		r, err := events.UpdateOne(ctx, bson.D{{Key: "_id", Value: q.Event}, {Key: "state", Value: stateClaimed}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: c.owner}, {Key: "claimed", Value: now}, {Key: "until", Value: c.until}, {Key: "at", Value: now}}}})
		if err != nil {
			return false, fmt.Errorf("take over event %s: %w", q.Event, err)
		}
		return r.MatchedCount == 1, nil
	}
}

// settled reports whether a failed write left nothing that a new attempt
// would not do the same way, with nothing still running: it was refused
// before it was sent, by the adapter, or by the server in its answer (an
// update or delete the server stopped part way changed some records as a
// new attempt will). A write cut off on the client side (deadline,
// connection lost) may have applied, or still be applying, on the server;
// one with a write concern error has applied.
func settled(err error) bool {
	var we *wire.Error
	var wex mongo.WriteException
	var se mongo.ServerError
	switch {
	case errors.As(err, &we): // the adapter's own refusals: bad_value, not_found, too_large, ...
		return true
	case errors.As(err, &topology.ServerSelectionError{}), errors.As(err, &topology.WaitQueueTimeoutError{}),
		errors.Is(err, mongo.ErrClientDisconnected), errors.Is(err, driver.ErrDocumentTooLarge):
		return true // never sent
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), mongo.IsNetworkError(err):
		return false
	case errors.As(err, &wex) && wex.WriteConcernError != nil:
		return false
	case errors.As(err, &se):
		return true
	}
	return false
}

// newOwner returns a token naming one attempt.
func newOwner() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// replayed turns a done record into the result it recorded.
func replayed(rec eventRecord) *store.Result {
	res := &store.Result{Affected: rec.Affected, Key: rec.Key, Replayed: true}
	if n, ok := rec.Key.(int32); ok {
		res.Key = int64(n)
	}
	return res
}

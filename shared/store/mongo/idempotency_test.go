package mongo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Twins are concurrent deliveries of one write (one event ID). Every test
// here counts what happened in the database (documents, or documents
// changed by the write against what it answered), never the adapter's
// Replayed flag.

const twins = 20

// tagsTemplate stores its key under tag_code, not _id, and the test
// database has no unique index on it: only the event claim can keep two
// twins of one create from both inserting.
func tagsTemplate(t *testing.T) *template.Template {
	t.Helper()
	tpl, err := template.Parse("tags.toml", []byte(`
name = "tags"
tla = "tag"
kind = "rec"
store = "mongo"
[fields]
code = { type = "string", key = true, stored = "tag_code" }
label = { type = "string" }
[objects]
collection = "tags"
[ops]
allow = ["create", "read", "count", "update", "delete"]
`), map[string]string{"mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// runTwins runs n deliveries of req under one event at once and returns
// their results and errors.
func runTwins(t *testing.T, s *Store, tpl *template.Template, event string, n int, req func() *wire.Request) ([]*store.Result, []error) {
	t.Helper()
	results := make([]*store.Result, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		r := req()
		r.Template = tpl.Name
		q := build(t, tpl, event, r)
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			results[i], errs[i] = s.Exec(ctx, q)
		})
	}
	close(start)
	wg.Wait()
	return results, errs
}

// sameAnswers fails unless every twin answered ok with the same affected
// and key, and returns that answer.
func sameAnswers(t *testing.T, results []*store.Result, errs []error) *store.Result {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("twin %d: %v", i, err)
		}
	}
	first := results[0]
	for i, r := range results {
		if r.Affected != first.Affected || !reflect.DeepEqual(r.Key, first.Key) {
			t.Fatalf("twin %d answered %+v, twin 0 %+v", i, r, first)
		}
	}
	return first
}

// matchDB fails unless every twin answered ok with affected equal to
// inDB, what the database shows the write did.
func matchDB(t *testing.T, results []*store.Result, errs []error, inDB int64, what string) {
	t.Helper()
	for i := range results {
		switch {
		case errs[i] != nil:
			t.Errorf("twin %d: %v; the database has %d records %s", i, errs[i], inDB, what)
		case results[i].Affected != inDB:
			t.Errorf("twin %d answered affected %d; the database has %d records %s", i, results[i].Affected, inDB, what)
		}
	}
}

func countDocs(t *testing.T, s *Store, coll string, filter bson.D) int64 {
	t.Helper()
	n, err := s.db.Collection(coll).CountDocuments(t.Context(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTwinCreates: concurrent deliveries of one create make one document
// and all answer it, with a caller-chosen key (no unique index to help)
// and with a generated key.
func TestTwinCreates(t *testing.T) {
	s := testStore(t)
	tags := tagsTemplate(t)
	res, errs := runTwins(t, s, tags, "01JTWINCREATE0000000000001", twins, func() *wire.Request {
		return &wire.Request{Op: wire.OpCreate, Data: raw(`{"code": "k1", "label": "once"}`)}
	})
	got := sameAnswers(t, res, errs)
	if got.Affected != 1 || got.Key != "k1" {
		t.Errorf("answer %+v", got)
	}
	if n := countDocs(t, s, "tags", bson.D{{Key: "tag_code", Value: "k1"}}); n != 1 {
		t.Errorf("%d twins made %d documents, want 1", twins, n)
	}

	people := testTemplate(t, "people")
	const ev = "01JTWINCREATE0000000000002"
	res, errs = runTwins(t, s, people, ev, twins, func() *wire.Request {
		return &wire.Request{Op: wire.OpCreate, Data: raw(`{"name": "Gen"}`)}
	})
	got = sameAnswers(t, res, errs)
	if got.Affected != 1 || got.Key != ev {
		t.Errorf("answer %+v", got)
	}
	if n := countDocs(t, s, "people", bson.D{}); n != 1 {
		t.Errorf("%d twins made %d documents, want 1", twins, n)
	}
}

// writer inserts people records with nick "old" until stopped, so that a
// write applied twice would find new records to change the second time.
func writer(t *testing.T, s *Store, tpl *template.Template) (stop func() int) {
	t.Helper()
	done := make(chan struct{})
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			q := build(t, tpl, fmt.Sprintf("w%d", i), &wire.Request{Template: tpl.Name, Op: wire.OpCreate,
				Data: raw(fmt.Sprintf(`{"id": "w%d", "name": "W", "nick": "old"}`, i))})
			if _, err := s.Exec(t.Context(), q); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			n.Add(1)
		}
	})
	return func() int {
		close(done)
		wg.Wait()
		return int(n.Load())
	}
}

// TestTwinUpdate: while records that match keep arriving, twins of one
// update change exactly as many records as they all answer: a second
// application would change the newcomers too.
func TestTwinUpdate(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	for i := range 5 {
		mustExec(t, s, tpl, fmt.Sprintf("seed%d", i), &wire.Request{Op: wire.OpCreate,
			Data: raw(fmt.Sprintf(`{"id": "s%d", "name": "S", "nick": "old"}`, i))})
	}
	stop := writer(t, s, tpl)
	time.Sleep(20 * time.Millisecond)
	res, errs := runTwins(t, s, tpl, "01JTWINUPDATE0000000000001", twins, func() *wire.Request {
		return &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"nick": "old"}`), Data: raw(`{"nick": "new"}`)}
	})
	inserted := stop()
	changed := countDocs(t, s, "people", bson.D{{Key: "nickname", Value: "new"}})
	matchDB(t, res, errs, changed, fmt.Sprintf("changed (%d inserted meanwhile)", inserted))
	if changed < 5 {
		t.Errorf("%d records changed, want at least the 5 seeded", changed)
	}
}

// TestTwinDelete: the same for a delete: the records gone are exactly the
// ones the twins answer.
func TestTwinDelete(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	for i := range 5 {
		mustExec(t, s, tpl, fmt.Sprintf("seed%d", i), &wire.Request{Op: wire.OpCreate,
			Data: raw(fmt.Sprintf(`{"id": "s%d", "name": "S", "nick": "old"}`, i))})
	}
	stop := writer(t, s, tpl)
	time.Sleep(20 * time.Millisecond)
	res, errs := runTwins(t, s, tpl, "01JTWINDELETE0000000000001", twins, func() *wire.Request {
		return &wire.Request{Op: wire.OpDelete, Filter: raw(`{"nick": "old"}`)}
	})
	inserted := stop()
	gone := int64(5+inserted) - countDocs(t, s, "people", bson.D{})
	matchDB(t, res, errs, gone, fmt.Sprintf("deleted (%d inserted meanwhile)", inserted))
	if gone < 5 {
		t.Errorf("%d records deleted, want at least the 5 seeded", gone)
	}
}

// TestGeneratedKeyTaken: a create without a key, whose event ID equals
// the key of a record another event made, must not answer ok.
func TestGeneratedKeyTaken(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	const key = "01JTAKEN000000000000000001"
	mustExec(t, s, tpl, "other-event", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": "` + key + `", "name": "Orig"}`)})

	_, err := exec(t, s, tpl, key, &wire.Request{Op: wire.OpCreate, Data: raw(`{"name": "Intruder"}`)})
	wantCode(t, err, wire.CodeConflict)
	res := mustExec(t, s, tpl, "r", &wire.Request{Op: wire.OpRead, Filter: raw(`{"id": "` + key + `"}`), Fields: []string{"name"}})
	if len(res.Rows) != 1 || res.Rows[0]["name"] != "Orig" {
		t.Errorf("the record is now %v", res.Rows)
	}
	// The refusal is not recorded as the event's outcome: it answers the
	// same again, still without writing.
	_, err = exec(t, s, tpl, key, &wire.Request{Op: wire.OpCreate, Data: raw(`{"name": "Intruder"}`)})
	wantCode(t, err, wire.CodeConflict)
	if n := countDocs(t, s, "people", bson.D{}); n != 1 {
		t.Errorf("%d documents, want 1", n)
	}
}

// putClaim stores a claim on event as another attempt would have left it.
func putClaim(t *testing.T, s *Store, tpl *template.Template, event string, op wire.Op, owner string, until time.Time) {
	t.Helper()
	now := time.Now().UTC()
	_, err := s.db.Collection(eventsCollection).InsertOne(t.Context(), eventRecord{ID: event, Template: tpl.Name, Op: string(op),
		State: stateClaimed, Owner: owner, Claimed: now, Until: until.UTC(), At: now})
	if err != nil {
		t.Fatal(err)
	}
}

func readRecord(t *testing.T, s *Store, event string) (eventRecord, bool) {
	t.Helper()
	var rec eventRecord
	err := s.db.Collection(eventsCollection).FindOne(t.Context(), bson.D{{Key: "_id", Value: event}}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return rec, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec, true
}

// TestClaimHeld: while another attempt holds a live claim, a delivery
// waits for it and answers timeout at its deadline, changing nothing.
func TestClaimHeld(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	putClaim(t, s, tpl, "held", wire.OpDelete, "other", time.Now().Add(time.Minute))
	q := build(t, tpl, "held", &wire.Request{Template: tpl.Name, Op: wire.OpDelete, Filter: raw(`{"id": "ann"}`)})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Exec(ctx, q)
	wantCode(t, err, wire.CodeTimeout)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("waited %v past a 300ms deadline", el)
	}
	if n := countDocs(t, s, "people", bson.D{{Key: "_id", Value: "ann"}}); n != 1 {
		t.Error("the waiting delivery deleted the record")
	}
	if rec, ok := readRecord(t, s, "held"); !ok || rec.Owner != "other" || rec.State != stateClaimed {
		t.Errorf("the claim is now %+v (present %v)", rec, ok)
	}
}

// TestClaimSettledWhileWaiting: a waiting delivery answers from the record
// once the holder completes it, and claims the event itself once the
// holder releases it.
func TestClaimSettledWhileWaiting(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	events := s.db.Collection(eventsCollection)

	putClaim(t, s, tpl, "completes", wire.OpUpdate, "other", time.Now().Add(time.Minute))
	q := build(t, tpl, "completes", &wire.Request{Template: tpl.Name, Op: wire.OpUpdate, Filter: raw(`{"id": "ann"}`), Data: raw(`{"nick": "twin"}`)})
	type answer struct {
		res *store.Result
		err error
	}
	ch := make(chan answer, 1)
	go func() { r, err := s.Exec(t.Context(), q); ch <- answer{r, err} }()
	time.Sleep(150 * time.Millisecond)
	if _, err := events.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: "completes"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: stateDone}, {Key: "affected", Value: int64(7)}}}}); err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil || a.res.Affected != 7 {
		t.Fatalf("answer after the holder completed = %+v, %v; want its recorded affected 7", a.res, a.err)
	}
	if n := countDocs(t, s, "people", bson.D{{Key: "nickname", Value: "twin"}}); n != 0 {
		t.Error("the waiting delivery wrote although the holder completed the event")
	}

	putClaim(t, s, tpl, "released", wire.OpUpdate, "other", time.Now().Add(time.Minute))
	q = build(t, tpl, "released", &wire.Request{Template: tpl.Name, Op: wire.OpUpdate, Filter: raw(`{"id": "ann"}`), Data: raw(`{"nick": "mine"}`)})
	go func() { r, err := s.Exec(t.Context(), q); ch <- answer{r, err} }()
	time.Sleep(150 * time.Millisecond)
	if _, err := events.DeleteOne(t.Context(), bson.D{{Key: "_id", Value: "released"}}); err != nil {
		t.Fatal(err)
	}
	a = <-ch
	if a.err != nil || a.res.Affected != 1 {
		t.Fatalf("answer after the holder released = %+v, %v", a.res, a.err)
	}
	if n := countDocs(t, s, "people", bson.D{{Key: "nickname", Value: "mine"}}); n != 1 {
		t.Error("the delivery did not write after the holder released the event")
	}
	if rec, _ := readRecord(t, s, "released"); rec.State != stateDone || rec.Affected != 1 {
		t.Errorf("record %+v, want done with affected 1", rec)
	}
}

// TestClaimTakeover: a claim whose holder's deadline passed more than
// ClaimGrace ago is taken over by exactly one of many deliveries, which
// runs the write; one within the grace is not.
func TestClaimTakeover(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	for i := range 5 {
		mustExec(t, s, tpl, fmt.Sprintf("seed%d", i), &wire.Request{Op: wire.OpCreate,
			Data: raw(fmt.Sprintf(`{"id": "s%d", "name": "S", "nick": "old"}`, i))})
	}

	// Within the grace: still held.
	putClaim(t, s, tpl, "young", wire.OpUpdate, "dead", time.Now().Add(-ClaimGrace+5*time.Second))
	q := build(t, tpl, "young", &wire.Request{Template: tpl.Name, Op: wire.OpUpdate, Filter: raw(`{"nick": "old"}`), Data: raw(`{"nick": "new"}`)})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	_, err := s.Exec(ctx, q)
	cancel()
	wantCode(t, err, wire.CodeTimeout)

	// Expired: twins race to take it over; one runs the write.
	putClaim(t, s, tpl, "stale", wire.OpUpdate, "dead", time.Now().Add(-ClaimGrace-time.Second))
	writerStop := writer(t, s, tpl)
	time.Sleep(20 * time.Millisecond)
	res, errs := runTwins(t, s, tpl, "stale", twins, func() *wire.Request {
		return &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"nick": "old"}`), Data: raw(`{"nick": "new"}`)}
	})
	inserted := writerStop()
	changed := countDocs(t, s, "people", bson.D{{Key: "nickname", Value: "new"}})
	matchDB(t, res, errs, changed, fmt.Sprintf("changed (%d inserted meanwhile)", inserted))
	if changed < 5 {
		t.Errorf("%d records changed, want at least the 5 seeded", changed)
	}
	if rec, _ := readRecord(t, s, "stale"); rec.State != stateDone || rec.Owner == "dead" || rec.Affected != changed {
		t.Errorf("record after takeover %+v", rec)
	}
}

// TestTakeoverChain: an attempt that won a takeover and died before making
// the claim its own leaves a marker; while the marker is live nobody else
// takes over, and once it expires the next attempt does.
func TestTakeoverChain(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	events := s.db.Collection(eventsCollection)
	long := time.Now().Add(-ClaimGrace - time.Minute)
	putClaim(t, s, tpl, "chain", wire.OpDelete, "x", long)
	marker := func(prev, owner string, until time.Time) {
		t.Helper()
		if _, err := events.InsertOne(t.Context(), eventRecord{ID: takeoverID("chain", prev), Template: tpl.Name, Op: "delete",
			State: stateTakeover, Owner: owner, Until: until.UTC(), At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	marker("x", "t1", long)                         // t1 won, then died
	marker("t1", "t2", time.Now().Add(time.Minute)) // t2 is taking over now
	q := build(t, tpl, "chain", &wire.Request{Template: tpl.Name, Op: wire.OpDelete, Filter: raw(`{"id": "ann"}`)})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := s.Exec(ctx, q)
	cancel()
	wantCode(t, err, wire.CodeTimeout)
	if n := countDocs(t, s, "people", bson.D{{Key: "_id", Value: "ann"}}); n != 1 {
		t.Fatal("deleted while another attempt was taking over")
	}

	// t2 dies too: its marker expires, and the next attempt takes over.
	if _, err := events.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: takeoverID("chain", "t1")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: long.UTC()}}}}); err != nil {
		t.Fatal(err)
	}
	res := mustExec(t, s, tpl, "chain", &wire.Request{Op: wire.OpDelete, Filter: raw(`{"id": "ann"}`)})
	if res.Affected != 1 || res.Replayed {
		t.Errorf("answer %+v", res)
	}
	if n := countDocs(t, s, "people", bson.D{{Key: "_id", Value: "ann"}}); n != 0 {
		t.Error("the takeover did not delete")
	}
	if rec, _ := readRecord(t, s, "chain"); rec.State != stateDone || rec.Affected != 1 {
		t.Errorf("record %+v", rec)
	}
}

// TestTakeoverCreateKeyTaken: a taken-over create whose key already exists
// may have been made by the dead holder, or not: conflict, saying so,
// never ok.
func TestTakeoverCreateKeyTaken(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	const ev = "01JTAKEOVER000000000000001"
	mustExec(t, s, tpl, "first", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": "` + ev + `", "name": "Orig"}`)})
	putClaim(t, s, tpl, ev, wire.OpCreate, "dead", time.Now().Add(-ClaimGrace-time.Second))
	_, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpCreate, Data: raw(`{"name": "Again"}`)})
	we := wantCode(t, err, wire.CodeConflict)
	if !strings.Contains(we.Message, "earlier attempt") {
		t.Errorf("message %q", we.Message)
	}
	if n := countDocs(t, s, "people", bson.D{}); n != 1 {
		t.Errorf("%d documents, want 1", n)
	}
}

// TestLegacyRecord: a record written before claims existed (no state) is
// a done event.
func TestLegacyRecord(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	if _, err := s.db.Collection(eventsCollection).InsertOne(t.Context(), bson.D{{Key: "_id", Value: "old"},
		{Key: "template", Value: "people"}, {Key: "op", Value: "delete"}, {Key: "affected", Value: int64(3)}, {Key: "at", Value: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	res := mustExec(t, s, tpl, "old", &wire.Request{Op: wire.OpDelete, Filter: raw(`{"id": "ann"}`)})
	if res.Affected != 3 || !res.Replayed {
		t.Errorf("answer %+v, want the recorded one", res)
	}
	if n := countDocs(t, s, "people", bson.D{{Key: "_id", Value: "ann"}}); n != 1 {
		t.Error("a recorded event ran again")
	}
}

// TestSettle: a failure that left nothing behind releases the claim; one
// that may have applied the write keeps it until it expires.
func TestSettle(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpDelete, Filter: raw(`{"id": "x"}`)})
	for _, tc := range []struct {
		err  error
		kept bool
	}{
		{wire.Errorf(wire.CodeNotFound, "none"), false},
		{fmt.Errorf("delete: %w", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000}}}), false},
		{fmt.Errorf("delete: %w", mongo.CommandError{Code: 91, Message: "shutting down"}), false},
		{fmt.Errorf("delete: %w", mongo.CommandError{Code: 50, Message: "time limit"}), false},
		{errors.New("connection reset by peer"), true},
		{fmt.Errorf("delete: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("delete: %w", mongo.CommandError{Labels: []string{"NetworkError"}, Wrapped: context.DeadlineExceeded}), true},
		{fmt.Errorf("delete: %w", mongo.CommandError{Labels: []string{"NetworkError"}, Wrapped: errors.New("EOF")}), true},
		{mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64}}, true},
	} {
		q.Event = fmt.Sprintf("settle-%v", tc.err)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		dl, _ := ctx.Deadline()
		_, err := s.write(ctx, q, func(context.Context, *store.Query, *claim) (*store.Result, error) { return nil, tc.err })
		cancel()
		if err == nil {
			t.Fatalf("%v: no error", tc.err)
		}
		rec, ok := readRecord(t, s, q.Event)
		if ok != tc.kept {
			t.Errorf("%v: claim kept %v, want %v", tc.err, ok, tc.kept)
		}
		if ok && (rec.State != stateClaimed || rec.Until.Sub(dl).Abs() > time.Millisecond) {
			t.Errorf("%v: kept claim %+v, want claimed until the deadline %v", tc.err, rec, dl)
		}
	}
}

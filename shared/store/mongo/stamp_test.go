package mongo

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// A holder that wrote and then died (kill -9) leaves its claim and its
// writes behind. These tests set both up by hand, as the dead holder
// would have left them, then send the same event again once the claim
// has expired, and count in the database what happened.

// stampKey is the reserved field every create and update stamps with its
// event ID, as the package doc names it.
const stampKey = "_beds_event"

// putDeadClaim stores the expired claim of a holder that died, with the
// target it recorded (the _ids of an update or delete; none for nil).
func putDeadClaim(t *testing.T, s *Store, tpl *template.Template, event string, op wire.Op, ids bson.A) {
	t.Helper()
	now := time.Now().UTC()
	rec := bson.D{{Key: "_id", Value: event}, {Key: "template", Value: tpl.Name}, {Key: "op", Value: string(op)},
		{Key: "state", Value: stateClaimed}, {Key: "owner", Value: "dead"}, {Key: "claimed", Value: now.Add(-ClaimGrace - time.Minute)},
		{Key: "until", Value: now.Add(-ClaimGrace - time.Second)}, {Key: "affected", Value: int64(0)}, {Key: "at", Value: now}}
	if ids != nil {
		rec = append(rec, bson.E{Key: "ids", Value: ids})
	}
	if _, err := s.db.Collection(eventsCollection).InsertOne(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
}

// docs returns every document of coll by _id, stamps included.
func docs(t *testing.T, s *Store, coll string) map[string]bson.M {
	t.Helper()
	cur, err := s.db.Collection(coll).Find(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var all []bson.M
	if err := cur.All(t.Context(), &all); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bson.M, len(all))
	for _, d := range all {
		out[d["_id"].(string)] = d
	}
	return out
}

// sameDocs fails unless got equals want but for the documents named in
// changed, which it returns from got.
func sameDocs(t *testing.T, want, got map[string]bson.M, changed ...string) {
	t.Helper()
	for id, w := range want {
		if slices.Contains(changed, id) {
			continue
		}
		if g, ok := got[id]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("document %s: %v, want it unchanged: %v", id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok && !slices.Contains(changed, id) {
			t.Errorf("a new document %v", got[id])
		}
	}
}

// holderWrote applies by hand what the dead holder of event wrote:
// update sets on the documents ids, stamped.
func holderWrote(t *testing.T, s *Store, event string, set bson.D, ids ...string) {
	t.Helper()
	set = append(set, bson.E{Key: stampKey, Value: event})
	for _, id := range ids {
		if _, err := s.db.Collection("people").UpdateOne(t.Context(), bson.D{{Key: "_id", Value: id}},
			bson.D{{Key: "$set", Value: set}}); err != nil {
			t.Fatal(err)
		}
	}
}

func holderDeleted(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := s.db.Collection("people").DeleteOne(t.Context(), bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
	}
}

// wantDone fails unless event's record is done with affected n.
func wantDone(t *testing.T, s *Store, event string, n int64) {
	t.Helper()
	if rec, ok := readRecord(t, s, event); !ok || rec.State != stateDone || rec.Affected != n || rec.Owner == "dead" {
		t.Errorf("record %+v (present %v), want done by the takeover with affected %d", rec, ok, n)
	}
}

// TestStamp: creates and updates stamp the documents they write with
// their event ID, and reads never show the stamp.
func TestStamp(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	mustExec(t, s, tpl, "ev-create", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": "ann", "name": "Ann"}`)})
	mustExec(t, s, tpl, "ev-gen", &wire.Request{Op: wire.OpCreate, Data: raw(`{"name": "Gen"}`)})
	all := docs(t, s, "people")
	if all["ann"][stampKey] != "ev-create" || all["ev-gen"][stampKey] != "ev-gen" {
		t.Fatalf("documents after create %v, want stamped with their events", all)
	}
	mustExec(t, s, tpl, "ev-update", &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"id": "ann"}`), Data: raw(`{"nick": "a"}`)})
	all = docs(t, s, "people")
	if all["ann"][stampKey] != "ev-update" || all["ev-gen"][stampKey] != "ev-gen" {
		t.Fatalf("documents after update %v, want ann stamped with the update", all)
	}
	for _, fields := range [][]string{nil, {"id", "nick"}} {
		res := mustExec(t, s, tpl, "r", &wire.Request{Op: wire.OpRead, Fields: fields})
		for _, row := range res.Rows {
			for k := range row {
				if strings.HasPrefix(k, "_") {
					t.Errorf("read %v shows %s: %v", fields, k, row)
				}
			}
		}
	}
}

// TestTakeoverCreateLanded: the dead holder inserted the document: the
// takeover answers it (ok, its key) and makes no second one, whether the
// key is stored apart from _id (no unique index), as _id, or generated.
func TestTakeoverCreateLanded(t *testing.T) {
	for _, tc := range []struct {
		name, coll string
		tpl        func(*testing.T) *template.Template
		data       string
		doc        func(event string) bson.D // what the holder inserted
		key        func(event string) string
	}{
		{"key not _id", "tags", tagsTemplate, `{"code": "k1", "label": "once"}`,
			func(ev string) bson.D {
				return bson.D{{Key: "tag_code", Value: "k1"}, {Key: "tag_label", Value: "once"}, {Key: stampKey, Value: ev}}
			},
			func(string) string { return "k1" }},
		{"key as _id", "people", func(t *testing.T) *template.Template { return testTemplate(t, "people") }, `{"id": "p1", "name": "P"}`,
			func(ev string) bson.D {
				return bson.D{{Key: "_id", Value: "p1"}, {Key: "ppl_name", Value: "P"}, {Key: stampKey, Value: ev}}
			},
			func(string) string { return "p1" }},
		{"generated key", "people", func(t *testing.T) *template.Template { return testTemplate(t, "people") }, `{"name": "G"}`,
			func(ev string) bson.D {
				return bson.D{{Key: "_id", Value: ev}, {Key: "ppl_name", Value: "G"}, {Key: stampKey, Value: ev}}
			},
			func(ev string) string { return ev }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStore(t)
			tpl := tc.tpl(t)
			const ev = "01JLANDEDCREATE00000000001"
			putDeadClaim(t, s, tpl, ev, wire.OpCreate, nil)
			if _, err := s.db.Collection(tc.coll).InsertOne(t.Context(), tc.doc(ev)); err != nil {
				t.Fatal(err)
			}
			var before []bson.M
			cur, _ := s.db.Collection(tc.coll).Find(t.Context(), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 0}}))
			if err := cur.All(t.Context(), &before); err != nil {
				t.Fatal(err)
			}

			res, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpCreate, Data: raw(tc.data)})
			if err != nil || res.Affected != 1 || res.Key != tc.key(ev) {
				t.Fatalf("takeover answered %+v, %v; want ok, affected 1, key %s", res, err, tc.key(ev))
			}
			var after []bson.M
			cur, _ = s.db.Collection(tc.coll).Find(t.Context(), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 0}}))
			if err := cur.All(t.Context(), &after); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after, before) {
				t.Errorf("documents after the takeover %v, want the holder's only: %v", after, before)
			}
			wantDone(t, s, ev, 1)
			if res, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpCreate, Data: raw(tc.data)}); err != nil || res.Key != tc.key(ev) {
				t.Errorf("a later delivery answered %+v, %v", res, err)
			}
		})
	}
}

// TestTakeoverCreateNotLanded: the holder died before inserting: the
// takeover inserts, once, stamped.
func TestTakeoverCreateNotLanded(t *testing.T) {
	s := testStore(t)
	tpl := tagsTemplate(t)
	const ev = "01JUNLANDEDCREATE000000001"
	putDeadClaim(t, s, tpl, ev, wire.OpCreate, nil)
	res, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpCreate, Data: raw(`{"code": "k1", "label": "once"}`)})
	if err != nil || res.Affected != 1 || res.Key != "k1" {
		t.Fatalf("takeover answered %+v, %v", res, err)
	}
	if n := countDocs(t, s, "tags", bson.D{{Key: "tag_code", Value: "k1"}, {Key: stampKey, Value: ev}}); n != 1 {
		t.Errorf("%d stamped documents with the key, want 1", n)
	}
	wantDone(t, s, ev, 1)
}

// TestTakeoverCreateKeyTakenApart: a taken-over create whose key, stored
// apart from _id without a unique index, is held by a document that does
// not carry the event's stamp: conflict, and no second document.
func TestTakeoverCreateKeyTakenApart(t *testing.T) {
	s := testStore(t)
	tpl := tagsTemplate(t)
	mustExec(t, s, tpl, "other", &wire.Request{Op: wire.OpCreate, Data: raw(`{"code": "k1", "label": "first"}`)})
	const ev = "01JKEYTAKENAPART0000000001"
	putDeadClaim(t, s, tpl, ev, wire.OpCreate, nil)
	_, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpCreate, Data: raw(`{"code": "k1", "label": "again"}`)})
	we := wantCode(t, err, wire.CodeConflict)
	if !strings.Contains(we.Message, "earlier attempt") || strings.Contains(we.Message, "tag_") {
		t.Errorf("message %q", we.Message)
	}
	if n := countDocs(t, s, "tags", bson.D{}); n != 1 {
		t.Errorf("%d documents, want 1", n)
	}
}

// TestTakeoverUpdateLanded: the dead holder updated its target, in whole
// or in part, so that some of it no longer matches the filter. The
// takeover counts what the holder updated, updates the rest once, and
// never answers not_found.
func TestTakeoverUpdateLanded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wrote []string // of the target ann, dan (age 30)
	}{
		{"whole", []string{"ann", "dan"}},
		{"part", []string{"ann"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStore(t)
			tpl := testTemplate(t, "people")
			seed(t, s, tpl)
			const ev = "01JLANDEDUPDATE00000000001"
			putDeadClaim(t, s, tpl, ev, wire.OpUpdate, bson.A{"ann", "dan"})
			holderWrote(t, s, ev, bson.D{{Key: "ppl_age", Value: int64(31)}}, tc.wrote...)
			before := docs(t, s, "people")

			res, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"age": 30}`), Data: raw(`{"age": 31}`)})
			if err != nil || res.Affected != 2 {
				t.Fatalf("takeover answered %+v, %v; want ok, affected 2", res, err)
			}
			after := docs(t, s, "people")
			sameDocs(t, before, after, "dan")
			if d := after["dan"]; d["ppl_age"] != int64(31) || d[stampKey] != ev {
				t.Errorf("dan is %v, want updated by the event", d)
			}
			wantDone(t, s, ev, 2)
		})
	}
}

// TestTakeoverUpdateBeforeWrite: the holder recorded its target and died
// before writing. The takeover updates the target once: a recorded
// document that no longer matches is skipped, and one that began to
// match after the holder's find is left alone.
func TestTakeoverUpdateBeforeWrite(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl) // ann and dan are 30, cid 25
	const ev = "01JUNLANDEDUPDATE000000001"
	// The holder found ann and cid; cid changed since, dan began to match.
	putDeadClaim(t, s, tpl, ev, wire.OpUpdate, bson.A{"ann", "cid"})
	before := docs(t, s, "people")

	res, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"age": 30}`), Data: raw(`{"nick": "once"}`)})
	if err != nil || res.Affected != 1 {
		t.Fatalf("takeover answered %+v, %v; want ok, affected 1", res, err)
	}
	after := docs(t, s, "people")
	sameDocs(t, before, after, "ann")
	if d := after["ann"]; d["nickname"] != "once" || d[stampKey] != ev {
		t.Errorf("ann is %v, want updated by the event", d)
	}
	wantDone(t, s, ev, 1)
}

// TestTakeoverDeleteLanded: the dead holder deleted its target, in whole
// or in part. The takeover deletes what is left of it, counts the whole
// target, and never answers not_found.
func TestTakeoverDeleteLanded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wrote []string // of the target ann, dan (age 30)
	}{
		{"whole", []string{"ann", "dan"}},
		{"part", []string{"ann"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStore(t)
			tpl := testTemplate(t, "people")
			seed(t, s, tpl)
			const ev = "01JLANDEDDELETE00000000001"
			putDeadClaim(t, s, tpl, ev, wire.OpDelete, bson.A{"ann", "dan"})
			before := docs(t, s, "people")
			holderDeleted(t, s, tc.wrote...)

			res, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpDelete, Filter: raw(`{"age": 30}`)})
			if err != nil || res.Affected != 2 {
				t.Fatalf("takeover answered %+v, %v; want ok, affected 2", res, err)
			}
			after := docs(t, s, "people")
			sameDocs(t, before, after, "ann", "dan")
			if _, ok := after["dan"]; ok {
				t.Error("dan is still there")
			}
			wantDone(t, s, ev, 2)
		})
	}
}

// TestTakeoverDeleteBeforeWrite: the holder recorded its target and died
// before deleting: the takeover deletes the target only, once.
func TestTakeoverDeleteBeforeWrite(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	const ev = "01JUNLANDEDDELETE000000001"
	putDeadClaim(t, s, tpl, ev, wire.OpDelete, bson.A{"ann", "cid"}) // cid no longer matches; dan began to
	before := docs(t, s, "people")

	res, err := exec(t, s, tpl, ev, &wire.Request{Op: wire.OpDelete, Filter: raw(`{"age": 30}`)})
	if err != nil || res.Affected != 1 {
		t.Fatalf("takeover answered %+v, %v; want ok, affected 1", res, err)
	}
	after := docs(t, s, "people")
	sameDocs(t, before, after, "ann")
	if _, ok := after["ann"]; ok {
		t.Error("ann is still there")
	}
	wantDone(t, s, ev, 1)
}

// TestTakeoverTargetGone: every recorded document changed so it no longer
// matches, and none carries the event's stamp: nothing was the holder's
// doing, and nothing matches: not_found, nothing changed.
func TestTakeoverTargetGone(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	for _, op := range []wire.Op{wire.OpUpdate, wire.OpDelete} {
		ev := "01JTARGETGONE-" + string(op)
		putDeadClaim(t, s, tpl, ev, op, bson.A{"cid"})
		before := docs(t, s, "people")
		req := &wire.Request{Op: op, Filter: raw(`{"age": 30}`)}
		if op == wire.OpUpdate {
			req.Data = raw(`{"nick": "x"}`)
		}
		_, err := exec(t, s, tpl, ev, req)
		wantCode(t, err, wire.CodeNotFound)
		sameDocs(t, before, docs(t, s, "people"))
	}
}

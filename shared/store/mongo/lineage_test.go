package mongo

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// lineageStore opens a store on a fresh database with the indexes of
// deploy/mongo/indexes.json.
func lineageStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{URI: testenv.Mongo(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func lctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var linT0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// lrec is a record started ms milliseconds after linT0.
func lrec(event, parent string, ms int) wire.Lineage {
	return wire.Lineage{Event: event, Parent: parent, Op: wire.OpRead, Template: "users", Node: "appserver@host",
		Outcome: "ok", Started: linT0.Add(time.Duration(ms) * time.Millisecond), DurationUS: int64(ms)}
}

func appendAll(t *testing.T, s *Store, recs ...wire.Lineage) {
	t.Helper()
	if err := s.AppendLineage(lctx(t), recs); err != nil {
		t.Fatalf("AppendLineage: %v", err)
	}
}

func treeEvents(t *testing.T, s *Store, event string, max int) []string {
	t.Helper()
	recs, err := s.LineageTree(lctx(t), event, max)
	if err != nil {
		t.Fatalf("LineageTree(%s): %v", event, err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Event
	}
	return out
}

func treeShape(n *wire.Lineage) string {
	if n == nil {
		return "<nil>"
	}
	if len(n.Children) == 0 {
		return n.Event
	}
	parts := make([]string, len(n.Children))
	for i, c := range n.Children {
		parts[i] = treeShape(c)
	}
	return n.Event + "(" + strings.Join(parts, " ") + ")"
}

// Every field round-trips, started to the microsecond in UTC; empty
// optional fields are left out of the document.
func TestLineageRoundTrip(t *testing.T) {
	s := lineageStore(t)
	root := wire.Lineage{Event: "01JDQ3V0Z8K4M6T2X9B7C5N1PA", Op: wire.OpBatch, Node: "appserver@h1", Outcome: "ok",
		Started: linT0.In(time.FixedZone("X", 3600)), DurationUS: 1234,
		Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	child := wire.Lineage{Event: root.Event + ".1", Parent: root.Event, Op: wire.OpCreate, Template: "users",
		Outcome: "conflict", Started: linT0.Add(time.Millisecond), DurationUS: 99}
	appendAll(t, s, root, child)

	got, err := s.LineageTree(lctx(t), root.Event, 10)
	if err != nil {
		t.Fatal(err)
	}
	root.Started = linT0.Truncate(time.Microsecond)
	child.Started = child.Started.Truncate(time.Microsecond)
	if want := []wire.Lineage{root, child}; !reflect.DeepEqual(got, want) {
		t.Errorf("read\n got  %+v\n want %+v", got, want)
	}
	raw, err := s.db.Collection(lineageCollection).FindOne(lctx(t), bson.D{{Key: "_id", Value: root.Event}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"parent", "template"} {
		if _, err := raw.LookupErr(absent); err == nil {
			t.Errorf("root's empty %s is stored: %s", absent, raw)
		}
	}
	if v, err := raw.LookupErr("started"); err != nil || v.Type != bson.TypeDateTime {
		t.Errorf("started is not a date: %s", raw)
	}
	if recs, err := s.LineageTree(lctx(t), "nope", 10); err != nil || len(recs) != 0 {
		t.Errorf("unknown event: %v %v, want none", recs, err)
	}
}

// A record for a stored event replaces it, across calls and within one.
func TestLineageReplaces(t *testing.T) {
	s := lineageStore(t)
	first := lrec("E", "", 0)
	first.Outcome = "unavailable"
	appendAll(t, s, first, lrec("E.1", "E", 1))

	again := lrec("E", "P", 5)
	again.Outcome = "timeout"
	latest := again
	latest.Outcome = "ok"
	latest.Node = ""
	appendAll(t, s, again, latest)

	got, err := s.LineageTree(lctx(t), "E", 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	latest.Started = latest.Started.Truncate(time.Microsecond)
	if !reflect.DeepEqual(got[0], latest) {
		t.Errorf("stored %+v, want the latest %+v", got[0], latest)
	}
}

func TestLineageTree(t *testing.T) {
	s := lineageStore(t)
	appendAll(t, s,
		// A request R fanned out to R.1 and R.2; R.2's node called another
		// node, whose request X names R.2 as parent by header.
		lrec("R", "", 0), lrec("R.2", "R", 2), lrec("R.1", "R", 5), lrec("R.1.1", "R.1", 6),
		lrec("X", "R.2", 3), lrec("X.1", "X", 4),
		// Unrelated.
		lrec("S", "", 0), lrec("S.1", "S", 1),
		// A loop: C1's parent is C3, below it.
		lrec("C1", "C3", 0), lrec("C2", "C1", 1), lrec("C3", "C2", 2), lrec("C3.1", "C3", 3),
		// A self loop.
		lrec("L", "L", 0), lrec("L.1", "L", 1),
	)
	for _, tc := range []struct {
		event string
		max   int
		want  string
	}{
		// Breadth first; within a level by started.
		{"R", 100, "R R.2 R.1 X R.1.1 X.1"},
		{"R", 4, "R R.2 R.1 X"},
		{"R", 1, "R"},
		{"R.2", 100, "R.2 X X.1"},
		{"X", 100, "X X.1"},
		{"C1", 100, "C1 C2 C3 C3.1"},
		{"C2", 100, "C2 C3 C1 C3.1"},
		{"L", 100, "L L.1"},
		{"nope", 100, ""},
	} {
		t.Run(tc.event+"/"+strconv.Itoa(tc.max), func(t *testing.T) {
			if got := strings.Join(treeEvents(t, s, tc.event, tc.max), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	recs, err := s.LineageTree(lctx(t), "R", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := treeShape(lineage.Tree(recs, "R")); got != "R(R.1(R.1.1) R.2(X(X.1)))" {
		t.Errorf("Tree = %s", got)
	}
	if _, err := s.LineageTree(lctx(t), "R", 0); err == nil {
		t.Error("max 0 accepted")
	}
}

// A chain is followed lineage.MaxDepth levels below its event, no more.
func TestLineageDepthCap(t *testing.T) {
	s := lineageStore(t)
	recs := []wire.Lineage{lrec("D0", "", 0)}
	for i := 1; i <= lineage.MaxDepth+5; i++ {
		recs = append(recs, lrec(fmt.Sprintf("D%d", i), fmt.Sprintf("D%d", i-1), i))
	}
	appendAll(t, s, recs...)
	got := treeEvents(t, s, "D0", 1000)
	if len(got) != lineage.MaxDepth+1 || got[len(got)-1] != fmt.Sprintf("D%d", lineage.MaxDepth) {
		t.Errorf("%d records, last %s; want %d, last D%d", len(got), got[len(got)-1], lineage.MaxDepth+1, lineage.MaxDepth)
	}
}

// An invalid ID fails the call before anything is written.
func TestLineageRefusesInvalid(t *testing.T) {
	s := lineageStore(t)
	for _, bad := range []wire.Lineage{lrec("", "", 0), lrec("ok", "has space", 0), lrec(strings.Repeat("e", 201), "", 0)} {
		if err := s.AppendLineage(lctx(t), []wire.Lineage{lrec("G", "", 0), bad}); err == nil || !strings.Contains(err.Error(), "record 1") {
			t.Errorf("%q/%q: %v, want an error naming record 1", bad.Event, bad.Parent, err)
		}
	}
	if got := treeEvents(t, s, "G", 1); len(got) != 0 {
		t.Error("a call with an invalid record stored its valid one")
	}
	if err := s.AppendLineage(lctx(t), nil); err != nil {
		t.Errorf("no records: %v", err)
	}
}

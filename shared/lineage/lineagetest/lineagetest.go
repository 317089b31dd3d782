// Package lineagetest checks a [lineage.Log] against the contract the
// lineage package states: [Run] is the suite every store's Log must pass,
// and the other functions build and read records for a store's own tests
// of what only it does.
package lineagetest

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

// T0 is when a record made by [Rec] with ms 0 started. It has
// nanoseconds, which a Log does not keep.
var T0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// Rec returns a record of event, below parent ("" for none): a read of
// template users by node appserver@host that ended ok, started ms
// milliseconds after T0 and took ms microseconds.
func Rec(event, parent string, ms int) wire.Lineage {
	return wire.Lineage{Event: event, Parent: parent, Op: wire.OpRead, Template: "users", Node: "appserver@host",
		Outcome: "ok", Started: T0.Add(time.Duration(ms) * time.Millisecond), DurationUS: int64(ms)}
}

// Sample returns a root with every field but Parent and Template set,
// started at T0 in a zone other than UTC, and its child with Node and
// Trace empty: between them each optional field is once empty and once
// set.
func Sample() (root, child wire.Lineage) {
	root = wire.Lineage{Event: "01JDQ3V0Z8K4M6T2X9B7C5N1PA", Op: wire.OpBatch, Node: "appserver@h1", Outcome: "ok",
		Started: T0.In(time.FixedZone("X", 3600)), DurationUS: 1234,
		Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	child = wire.Lineage{Event: root.Event + ".1", Parent: root.Event, Op: wire.OpCreate, Template: "users",
		Outcome: "conflict", Started: T0.Add(time.Millisecond), DurationUS: 99}
	return root, child
}

// Context returns a context that ends after 10 seconds or with the test,
// so that every statement a store sends carries a deadline, as the
// statements of requests do.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Append stores recs in l; the test fails at once if that fails.
func Append(t testing.TB, l lineage.Log, recs ...wire.Lineage) {
	t.Helper()
	if err := l.AppendLineage(Context(t), recs); err != nil {
		t.Fatalf("AppendLineage: %v", err)
	}
}

// Events returns the events of l.LineageTree(event, max) in the order it
// returns them; the test fails at once if it fails.
func Events(t testing.TB, l lineage.Log, event string, max int) []string {
	t.Helper()
	recs, err := l.LineageTree(Context(t), event, max)
	if err != nil {
		t.Fatalf("LineageTree(%s): %v", event, err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Event
	}
	return out
}

// Shape renders a tree as "A(B(D) C)": each node's event, then its
// children in order; nil is "<nil>".
func Shape(n *wire.Lineage) string {
	if n == nil {
		return "<nil>"
	}
	if len(n.Children) == 0 {
		return n.Event
	}
	parts := make([]string, len(n.Children))
	for i, c := range n.Children {
		parts[i] = Shape(c)
	}
	return n.Event + "(" + strings.Join(parts, " ") + ")"
}

// Run checks, each in a subtest on a Log of its own from open, what every
// Log must do: records round-trip with Started to the microsecond in UTC;
// a record replaces the stored one of its event; a tree follows Parent
// links, also across a header-parent link, breadth first, within max
// records and MaxDepth levels, through cycles and self-loops without
// looping, and builds with [lineage.Tree]; an unknown event has none; max
// below 1 and invalid IDs are refused. open returns an empty Log that
// lives until its test ends.
func Run(t *testing.T, open func(t *testing.T) lineage.Log) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, open(t)) })
	t.Run("Replaces", func(t *testing.T) { replaces(t, open(t)) })
	t.Run("Tree", func(t *testing.T) { tree(t, open(t)) })
	t.Run("DepthCap", func(t *testing.T) { depthCap(t, open(t)) })
	t.Run("RefusesInvalid", func(t *testing.T) { refusesInvalid(t, open(t)) })
}

// roundTrip: every field comes back; started to the microsecond, in UTC.
func roundTrip(t *testing.T, l lineage.Log) {
	root, child := Sample()
	Append(t, l, root, child)

	got, err := l.LineageTree(Context(t), root.Event, 10)
	if err != nil {
		t.Fatal(err)
	}
	root.Started = T0.Truncate(time.Microsecond)
	child.Started = child.Started.Truncate(time.Microsecond)
	if want := []wire.Lineage{root, child}; !reflect.DeepEqual(got, want) {
		t.Errorf("read\n got  %+v\n want %+v", got, want)
	}
	if recs, err := l.LineageTree(Context(t), "nope", 10); err != nil || len(recs) != 0 {
		t.Errorf("unknown event: %v %v, want none", recs, err)
	}
}

// replaces: a record for a stored event replaces it, across calls and
// within one.
func replaces(t *testing.T, l lineage.Log) {
	first := Rec("E", "", 0)
	first.Outcome = "unavailable"
	Append(t, l, first, Rec("E.1", "E", 1))

	again := Rec("E", "P", 5)
	again.Outcome = "timeout"
	latest := again
	latest.Outcome = "ok"
	latest.Node = ""
	Append(t, l, again, latest)

	got, err := l.LineageTree(Context(t), "E", 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	latest.Started = latest.Started.Truncate(time.Microsecond)
	if !reflect.DeepEqual(got[0], latest) {
		t.Errorf("stored %+v, want the latest %+v", got[0], latest)
	}
}

// tree: which records a tree holds, in which order, and the tree
// lineage.Tree builds of them.
func tree(t *testing.T, l lineage.Log) {
	Append(t, l,
		// A request R fanned out to R.1 and R.2; R.2's node called another
		// node, whose request X names R.2 as parent by header.
		Rec("R", "", 0), Rec("R.2", "R", 2), Rec("R.1", "R", 5), Rec("R.1.1", "R.1", 6),
		Rec("X", "R.2", 3), Rec("X.1", "X", 4),
		// Unrelated.
		Rec("S", "", 0), Rec("S.1", "S", 1),
		// A loop: C1's parent is C3, below it.
		Rec("C1", "C3", 0), Rec("C2", "C1", 1), Rec("C3", "C2", 2), Rec("C3.1", "C3", 3),
		// A self loop.
		Rec("L", "L", 0), Rec("L.1", "L", 1),
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
			if got := strings.Join(Events(t, l, tc.event, tc.max), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	recs, err := l.LineageTree(Context(t), "R", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := Shape(lineage.Tree(recs, "R")); got != "R(R.1(R.1.1) R.2(X(X.1)))" {
		t.Errorf("Tree = %s", got)
	}
	recs, err = l.LineageTree(Context(t), "C1", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := Shape(lineage.Tree(recs, "C1")); got != "C1(C2(C3(C3.1)))" {
		t.Errorf("Tree of a loop = %s", got)
	}

	if _, err := l.LineageTree(Context(t), "R", 0); err == nil {
		t.Error("max 0 accepted")
	}
}

// depthCap: a chain is followed lineage.MaxDepth levels below its event,
// no more.
func depthCap(t *testing.T, l lineage.Log) {
	recs := []wire.Lineage{Rec("D0", "", 0)}
	for i := 1; i <= lineage.MaxDepth+5; i++ {
		recs = append(recs, Rec(fmt.Sprintf("D%d", i), fmt.Sprintf("D%d", i-1), i))
	}
	Append(t, l, recs...)
	got := Events(t, l, "D0", 1000)
	if len(got) != lineage.MaxDepth+1 || got[len(got)-1] != fmt.Sprintf("D%d", lineage.MaxDepth) {
		t.Errorf("%d records, last %s; want %d, last D%d", len(got), got[len(got)-1], lineage.MaxDepth+1, lineage.MaxDepth)
	}
}

// refusesInvalid: an invalid ID fails the call before anything is
// written; no records is not an error.
func refusesInvalid(t *testing.T, l lineage.Log) {
	for _, bad := range []wire.Lineage{Rec("", "", 0), Rec("ok", "has space", 0), Rec(strings.Repeat("e", lineage.MaxLen+1), "", 0)} {
		if err := l.AppendLineage(Context(t), []wire.Lineage{Rec("G", "", 0), bad}); err == nil || !strings.Contains(err.Error(), "record 1") {
			t.Errorf("%q/%q: %v, want an error naming record 1", bad.Event, bad.Parent, err)
		}
	}
	if got := Events(t, l, "G", 1); len(got) != 0 {
		t.Error("a call with an invalid record stored its valid one")
	}
	if err := l.AppendLineage(Context(t), nil); err != nil {
		t.Errorf("no records: %v", err)
	}
}

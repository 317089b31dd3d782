package lineage_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/lineage/lineagetest"
	"github.com/beds-project/beds/shared/wire"
)

func TestTree(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(event, parent string, ms int) wire.Lineage {
		return wire.Lineage{Event: event, Parent: parent, Op: wire.OpRead, Outcome: "ok", Started: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	for _, tc := range []struct {
		name    string
		records []wire.Lineage
		event   string
		want    string
	}{
		{"unknown event", []wire.Lineage{at("R", "", 0)}, "X", "<nil>"},
		{"no records", nil, "R", "<nil>"},
		{"single", []wire.Lineage{at("R", "", 0)}, "R", "R"},
		{
			// A request's own children sort by position (not as strings,
			// not by start: concurrent children start in any order), then
			// joined children by Started, then Event.
			"sorted by position, then started and event",
			[]wire.Lineage{at("R", "", 0), at("R.2", "R", 5), at("R.1", "R", 7), at("R.10", "R", 5), at("R.2.1", "R.2", 9),
				at("01B", "R", 3), at("01A", "R", 3), at("01C", "R", 1)},
			"R", "R(R.1 R.2(R.2.1) R.10 01C 01A 01B)",
		},
		{
			// A request naming its parent by header has an unrelated ID.
			"header parent link",
			[]wire.Lineage{at("R", "", 0), at("R.1", "R", 1), at("01OTHER", "R.1", 2), at("01OTHER.1", "01OTHER", 3)},
			"R", "R(R.1(01OTHER(01OTHER.1)))",
		},
		{
			"subtree from a middle event",
			[]wire.Lineage{at("R", "", 0), at("R.1", "R", 1), at("R.2", "R", 2), at("R.1.1", "R.1", 3)},
			"R.1", "R.1(R.1.1)",
		},
		{
			// R.1.1 names a parent nobody recorded: it is not reachable.
			"unreachable left out",
			[]wire.Lineage{at("R", "", 0), at("R.1.1", "R.1", 3), at("S", "", 1), at("S.1", "S", 2)},
			"R", "R",
		},
		{"self parent", []wire.Lineage{at("R", "R", 0), at("R.1", "R", 1)}, "R", "R(R.1)"},
		{
			// R's parent is its own grandchild: the loop is cut at R.
			"cycle through the root",
			[]wire.Lineage{at("R", "B", 0), at("A", "R", 1), at("B", "A", 2)},
			"R", "R(A(B))",
		},
		{
			"cycle entered from a middle event",
			[]wire.Lineage{at("R", "B", 0), at("A", "R", 1), at("B", "A", 2)},
			"A", "A(B(R))",
		},
		{"first of duplicates", []wire.Lineage{at("R", "", 0), at("C", "R", 1), at("C", "X", 1)}, "R", "R(C)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lineagetest.Shape(lineage.Tree(tc.records, tc.event)); got != tc.want {
				t.Errorf("Tree(%s) = %s, want %s", tc.event, got, tc.want)
			}
		})
	}
}

// Tree copies: the records it is given keep no children, and the tree's
// nodes carry every field of their record.
func TestTreeCopies(t *testing.T) {
	started := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	records := []wire.Lineage{
		{Event: "R", Op: wire.OpBatch, Node: "app@h", Outcome: "ok", Started: started, DurationUS: 7, Trace: "00-abc-def-01"},
		{Event: "R.1", Parent: "R", Op: wire.OpCreate, Template: "users", Outcome: "conflict", Started: started},
	}
	root := lineage.Tree(records, "R")
	if root == nil || len(root.Children) != 1 {
		t.Fatalf("tree %s", lineagetest.Shape(root))
	}
	if records[0].Children != nil {
		t.Error("Tree changed its input")
	}
	c := root.Children[0]
	if c.Template != "users" || c.Outcome != "conflict" || c.Parent != "R" || c.Op != wire.OpCreate {
		t.Errorf("child %+v", c)
	}
	if root.Node != "app@h" || root.DurationUS != 7 || root.Trace != "00-abc-def-01" || !root.Started.Equal(started) {
		t.Errorf("root %+v", root)
	}
}

// Tree does not recurse: a chain far deeper than MaxDepth builds.
func TestTreeDeepChain(t *testing.T) {
	const n = 10000
	records := make([]wire.Lineage, n)
	records[0] = wire.Lineage{Event: "R"}
	for i := 1; i < n; i++ {
		records[i] = wire.Lineage{Event: "E" + strconv.Itoa(i), Parent: records[i-1].Event}
	}
	depth := 0
	for node := lineage.Tree(records, "R"); len(node.Children) > 0; node = node.Children[0] {
		depth++
	}
	if depth != n-1 {
		t.Errorf("depth %d, want %d", depth, n-1)
	}
}

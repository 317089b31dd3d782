package lineage

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/beds-project/beds/shared/wire"
)

// Tree builds the tree rooted at event from records (as LineageTree
// returns them): each record becomes a node under the record its Parent
// names, children a request started in their order (E.1, E.2, ..., E.10),
// then children that joined by naming their parent, by Started then
// Event. It returns nil when event
// is not among records. Records not reachable from event by Parent links
// are left out, and so is a link that would put a record below itself
// (event's own Parent naming a record below it), so a cycle in the links
// cannot loop. Of several records for one Event the first is used.
// records are not changed: the tree holds copies.
func Tree(records []wire.Lineage, event string) *wire.Lineage {
	nodes := make(map[string]*wire.Lineage, len(records))
	kids := make(map[string][]*wire.Lineage)
	for i := range records {
		if _, dup := nodes[records[i].Event]; dup {
			continue
		}
		n := records[i]
		n.Children = nil
		nodes[n.Event] = &n
		if n.Parent != "" {
			kids[n.Parent] = append(kids[n.Parent], &n)
		}
	}
	root := nodes[event]
	if root == nil {
		return nil
	}
	// Breadth first, each node placed once: every record has one Parent,
	// so only the root can be met again (when the links loop back to it).
	placed := map[string]bool{event: true}
	for queue := []*wire.Lineage{root}; len(queue) > 0; queue = queue[1:] {
		n := queue[0]
		for _, c := range kids[n.Event] {
			if placed[c.Event] {
				continue
			}
			placed[c.Event] = true
			n.Children = append(n.Children, c)
			queue = append(queue, c)
		}
		slices.SortFunc(n.Children, func(a, b *wire.Lineage) int {
			pa, pb := position(n.Event, a.Event), position(n.Event, b.Event)
			return cmp.Or(cmp.Compare(pa, pb), a.Started.Compare(b.Started), cmp.Compare(a.Event, b.Event))
		})
	}
	return root
}

// position returns n for the n-th child ID of parent (Child(parent, n)),
// so children a request started keep their order, and MaxInt for a child
// that joined by naming its parent, which sorts after them by time.
func position(parent, id string) int {
	rest, ok := strings.CutPrefix(id, parent+".")
	if !ok {
		return math.MaxInt
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 {
		return math.MaxInt
	}
	return n
}

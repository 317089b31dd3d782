package dispatch

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestWindow(t *testing.T) {
	type step struct {
		settle  []uint64 // acked by the worker
		sent    []uint64 // settled on the wire already (nacked)
		top     uint64   // advance: the multiple ack, 0 for none
		stalled []uint64 // acked one by one
	}
	for _, tc := range []struct {
		name  string
		stall int
		steps []step
	}{
		{"in order, one at a time", 4, []step{
			{settle: []uint64{1}, top: 1},
			{settle: []uint64{2}, top: 2},
		}},
		{"batch", 4, []step{
			{settle: []uint64{1, 2, 3}, top: 3},
		}},
		{"out of order waits for the gap", 4, []step{
			{settle: []uint64{2, 3}, top: 0},
			{settle: []uint64{1}, top: 3},
			{settle: []uint64{5}, top: 0},
			{settle: []uint64{4, 6}, top: 6},
		}},
		{"a nack is not acked again", 4, []step{
			{settle: []uint64{1}, sent: []uint64{2}, top: 1},
			{settle: []uint64{3}, top: 3},
		}},
		{"nacks at the top: ack the highest still unacked", 4, []step{
			{settle: []uint64{1, 2}, sent: []uint64{3, 4}, top: 2},
		}},
		{"only nacks: no ack", 4, []step{
			{sent: []uint64{1, 2}, top: 0},
			{settle: []uint64{3}, top: 3},
		}},
		{"a stalled head: the rest one by one, never twice", 2, []step{
			{settle: []uint64{2, 3}, top: 0},
			{settle: []uint64{4}, top: 0, stalled: []uint64{2, 3, 4}},
			{settle: []uint64{5}, top: 0, stalled: []uint64{5}},
			{settle: []uint64{1}, top: 1},
			{settle: []uint64{6}, top: 6},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWindow(tc.stall)
			for i, s := range tc.steps {
				for _, tag := range s.settle {
					w.settle(tag, false)
				}
				for _, tag := range s.sent {
					w.settle(tag, true)
				}
				if top := w.advance(); top != s.top {
					t.Errorf("step %d: advance = %d, want %d", i, top, s.top)
				}
				if got := w.stalled(); !slices.Equal(got, s.stalled) {
					t.Errorf("step %d: stalled = %v, want %v", i, got, s.stalled)
				}
			}
		})
	}
}

// refWindow is the window's definition, the plain way: stalled goes
// through every settled tag.
type refWindow struct {
	next  uint64
	done  map[uint64]bool
	stall int
}

func (w *refWindow) advance() uint64 {
	var top uint64
	for sent, ok := w.done[w.next]; ok; sent, ok = w.done[w.next] {
		if !sent {
			top = w.next
		}
		delete(w.done, w.next)
		w.next++
	}
	return top
}

func (w *refWindow) stalled() []uint64 {
	if len(w.done) <= w.stall {
		return nil
	}
	var tags []uint64
	for tag, sent := range w.done {
		if !sent {
			tags = append(tags, tag)
			w.done[tag] = true
		}
	}
	slices.Sort(tags)
	return tags
}

// TestWindowAsDefined drives the window and refWindow with the same
// deliveries, settled out of order (some nacked), and wants the same acks
// from both, and unsent kept within its bound.
func TestWindowAsDefined(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, stall := range []int{1, 2, 8, 32} {
		w := newWindow(stall)
		ref := &refWindow{next: 1, done: map[uint64]bool{}, stall: stall}
		var held []uint64 // delivered, not yet settled
		next := uint64(1)
		for i := range 20000 {
			for len(held) < 64 { // a prefetch of 64
				held = append(held, next)
				next++
			}
			// Settle one held delivery, mostly among the oldest few (the
			// way workers finish), sometimes one much later.
			j := r.IntN(min(len(held), 4))
			if r.IntN(8) == 0 {
				j = r.IntN(len(held))
			}
			tag := held[j]
			held = slices.Delete(held, j, j+1)
			sent := r.IntN(50) == 0
			w.settle(tag, sent)
			ref.done[tag] = sent
			if got, want := w.advance(), ref.advance(); got != want {
				t.Fatalf("stall %d, settlement %d (tag %d): advance = %d, want %d", stall, i, tag, got, want)
			}
			if got, want := w.stalled(), ref.stalled(); !slices.Equal(got, want) {
				t.Fatalf("stall %d, settlement %d (tag %d): stalled = %v, want %v", stall, i, tag, got, want)
			}
			if len(w.unsent) > 2*len(w.done)+stall+1 {
				t.Fatalf("stall %d: unsent holds %d tags for %d settled", stall, len(w.unsent), len(w.done))
			}
		}
	}
}

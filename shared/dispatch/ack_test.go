package dispatch

import (
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

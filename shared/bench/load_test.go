package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		k    int64
		rate float64
		want time.Duration
	}{
		{0, 100, 0},
		{1, 100, 10 * time.Millisecond},
		{250, 100, 2500 * time.Millisecond},
		{3, 0.5, 6 * time.Second},
		{7, 1e6, 7 * time.Microsecond},
	} {
		if got := slot(tc.k, tc.rate); got != tc.want {
			t.Errorf("slot(%d, %g) = %s, want %s", tc.k, tc.rate, got, tc.want)
		}
	}
}

// instant answers every point read at once with one row.
type instant struct{ n atomic.Int64 }

func (i *instant) Do(context.Context, string, []byte) (*wire.Reply, error) {
	i.n.Add(1)
	return &wire.Reply{OK: true, Rows: []wire.Row{{"id": 1}}}, nil
}
func (i *instant) Close() error { return nil }

// TestRatePacesRun checks a paced run sends no request whose slot falls
// after its end, however fast the target answers: at most rate × duration,
// where the unpaced run against the same target sends far more.
func TestRatePacesRun(t *testing.T) {
	work := &Workload{Template: "users", RunID: "bench-ab12", Keys: []int64{1, 2, 3}}
	run := func(rate float64, requests int64) (*loadResult, int64) {
		tg := &instant{}
		l := &load{target: tg, picker: newPicker(PointRead, nil), work: work, clients: 8,
			duration: 300 * time.Millisecond, requests: requests, tag: "t", rate: rate}
		res := l.run(context.Background())
		return res, tg.n.Load()
	}
	res, sent := run(100, 0)
	// Slots 0..29 fall before 300ms; slot 30 is at the deadline.
	if sent > 30 || sent < 1 || res.n != sent || len(res.errors) != 0 {
		t.Errorf("paced at 100/s for 300ms: %d sent, %d counted, errors %v; want 1..30", sent, res.n, res.errors)
	}
	if _, unpaced := run(0, 0); unpaced <= 30 {
		t.Fatalf("the unpaced run sent only %d: the target is too slow to tell pacing apart", unpaced)
	}
	// A request count is paced too, and all of it is sent.
	if res, sent := run(1000, 20); sent != 20 || res.n != 20 {
		t.Errorf("20 requests at 1000/s: %d sent, %d counted", sent, res.n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := &load{target: &instant{}, picker: newPicker(PointRead, nil), work: work, clients: 2,
		duration: time.Hour, tag: "t", rate: 0.001}
	if res := l.run(ctx); res.n != 0 {
		t.Errorf("a canceled paced run sent %d", res.n)
	}
}

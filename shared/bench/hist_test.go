package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every value falls in a bucket whose range holds it, buckets are
	// ordered, and a bucket is at most 1/64 of its values wide.
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 4095, 4096, 1e6, 123456789, 1 << 40, 1<<47 - 1} {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if i < prev {
			t.Errorf("bucket of %d (%d) before the previous one (%d)", v, i, prev)
		}
		prev = i
		if w := float64(hi - lo + 1); v >= 128 && w/float64(lo) > 1.0/64+1e-9 {
			t.Errorf("bucket %d is %.0f wide at %d", i, w, lo)
		}
	}
	for i := 1; i < histBuckets; i++ {
		_, hiPrev := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != hiPrev+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, hiPrev)
		}
	}
	if got := bucketOf(math.MaxInt64); got != histBuckets-1 {
		t.Errorf("huge value in bucket %d", got)
	}
}

func TestQuantilesMatchSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var xs []int64
	for range 100000 {
		// Log-normal-ish latencies from 50µs to ~50ms.
		v := int64(50e3 * math.Exp(r.NormFloat64()*1.2+1))
		xs = append(xs, v)
		h.Record(time.Duration(v))
	}
	slices.Sort(xs)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := xs[int(math.Ceil(q*float64(len(xs))))-1]
		got := int64(h.Quantile(q))
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/64 {
			t.Errorf("q%.3f = %d, exact %d (off by %.2f%%)", q, got, exact, rel*100)
		}
	}
	if h.Max() != time.Duration(xs[len(xs)-1]) || h.Min() != time.Duration(xs[0]) {
		t.Errorf("min/max %v %v, want %v %v", h.Min(), h.Max(), xs[0], xs[len(xs)-1])
	}
	if h.Count() != int64(len(xs)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestQuantileSmall(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Summary() != (Latency{}) {
		t.Fatal("empty histogram should report zeros")
	}
	for _, ms := range []int{1, 2, 3, 4, 100} {
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	near := func(got time.Duration, want time.Duration) bool {
		return math.Abs(float64(got-want)) <= float64(want)/64
	}
	s := h.Summary()
	if !near(s.P50, 3*time.Millisecond) || !near(s.P90, 100*time.Millisecond) || s.Max != 100*time.Millisecond {
		t.Errorf("summary %+v", s)
	}
	if h.Quantile(0) != time.Millisecond || h.Quantile(1) != 100*time.Millisecond {
		t.Errorf("q0 %v q1 %v", h.Quantile(0), h.Quantile(1))
	}
	if h.Mean() != 22*time.Millisecond {
		t.Errorf("mean %v", h.Mean())
	}
	// One sample: every quantile is it, exactly (clamped to min and max).
	var one Histogram
	one.Record(1234567)
	if one.Quantile(0.5) != 1234567 || one.Quantile(0.999) != 1234567 {
		t.Errorf("single sample quantiles %v %v", one.Quantile(0.5), one.Quantile(0.999))
	}
	one.Record(-5) // clock went backwards: counted as 0
	if one.Min() != 0 {
		t.Errorf("negative sample recorded as %v", one.Min())
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&Histogram{})
	m.Merge(&a)
	m.Merge(&b)
	if m.Summary() != all.Summary() || m.Count() != all.Count() {
		t.Errorf("merged %+v, want %+v", m.Summary(), all.Summary())
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1500 * time.Microsecond) }); n != 0 {
		t.Errorf("Record allocates %.0f times", n)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

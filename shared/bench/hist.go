package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records latencies in log-linear buckets: values below 128 ns
// exactly, larger ones with 64 sub-buckets per power of two, so a reported
// percentile is within 1/64 (1.6%) of the true value. Min, max, count and
// sum are exact. It uses a fixed 11 KiB whatever the number of samples,
// records without allocating, and merges; it is not safe for concurrent
// use (give each client its own and Merge them).
type Histogram struct {
	counts [histBuckets]uint32
	n      int64
	sum    int64 // ns
	min    int64
	max    int64
}

const (
	subBits     = 6
	subCount    = 1 << subBits // 64 sub-buckets per power of two
	maxShift    = 40           // up to 2^47 ns, about 39 hours
	histBuckets = (maxShift + 2) * subCount
)

// bucketOf returns the bucket index of v (ns, v >= 0).
func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1)
	if shift > maxShift {
		return histBuckets - 1
	}
	return shift*subCount + int(v>>shift)
}

// bucketRange returns the smallest and largest value bucket i holds.
func bucketRange(i int) (lo, hi int64) {
	shift := max(i/subCount-1, 0)
	mant := int64(i - shift*subCount)
	lo = mant << shift
	return lo, lo + (int64(1) << shift) - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *Histogram) Count() int64 { return h.n }

// Max returns the largest sample.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest sample.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the mean sample.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the latency q (0..1) of the samples are at or below:
// the sample of rank ceil(q*n), reported as the middle of its bucket and
// clamped to [min, max]. Quantile(1) is the max, Quantile(0) the min.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += int64(c)
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Latency is a histogram's summary.
type Latency struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Summary returns the percentiles the bench reports.
func (h *Histogram) Summary() Latency {
	return Latency{
		P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99),
		P999: h.Quantile(0.999), Max: h.Max(), Mean: h.Mean(),
	}
}

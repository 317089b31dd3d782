package growth

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/beds-project/beds/tools/soak/sample"
)

// Bounds is the largest slope per hour each series may have, in the
// series' own unit (bytes for RSS and heap); +Inf leaves a series
// unbounded.
type Bounds [sample.NumSeries]float64

// MiB is a mebibyte, the unit bounds on memory are given in.
const MiB = 1 << 20

// DefaultBounds are the bounds of a long soak (30 minutes or more): what a
// node in a steady state stays well below, and a leak of one object,
// goroutine or socket per few requests passes at once.
func DefaultBounds() Bounds {
	return Bounds{
		sample.RSS:          32 * MiB,
		sample.HeapInuse:    16 * MiB,
		sample.Goroutines:   20,
		sample.FDs:          10,
		sample.ConnsAMQP:    10,
		sample.ConnsMariaDB: 10,
		sample.ConnsMongo:   10,
		sample.ConnsOther:   10,
	}
}

// Verdict is the judgement of one series of one node.
type Verdict struct {
	Series sample.Series
	Fit    Fit     // over the samples after the warm-up, x in hours since the run's start
	Bound  float64 // per hour
	// First, Last, Min and Max are the fitted samples' values.
	First, Last, Min, Max float64
	Pass                  bool
	Why                   string // why it failed; "" when it passed
}

// Node is one node's verdicts, one per series.
type Node struct {
	Name     string
	Samples  int // all of the node's samples, the warm-up's too
	Verdicts [sample.NumSeries]Verdict
}

// Result is the judgement of a whole soak.
type Result struct {
	Start, End time.Time // first and last sample
	// FitFrom is where the warm-up ends: samples before it are plotted
	// but not fitted.
	FitFrom  time.Time
	Interval time.Duration // the median time between a node's samples
	Nodes    []Node        // in the order nodes first appear
}

// Passed reports whether every series of every node passed.
func (r *Result) Passed() bool {
	for _, n := range r.Nodes {
		for _, v := range n.Verdicts {
			if !v.Pass {
				return false
			}
		}
	}
	return true
}

// Failures lists the failed series as "node series: why".
func (r *Result) Failures() []string {
	var out []string
	for _, n := range r.Nodes {
		for _, v := range n.Verdicts {
			if !v.Pass {
				out = append(out, fmt.Sprintf("%s %s: %s", n.Name, v.Series, v.Why))
			}
		}
	}
	return out
}

// DefaultWarmup is the warm-up of a run spanning span when none is given:
// the larger of 10% of it and 2 minutes, but never more than half of it
// (a short run keeps half its samples to fit).
func DefaultWarmup(span time.Duration) time.Duration {
	w := max(span/10, 2*time.Minute)
	return min(w, span/2)
}

// MinFitted is how many samples after the warm-up a series needs to be
// judged.
const MinFitted = 5

// Hours is x of a sample at t in a run that started at start: hours since.
func Hours(t, start time.Time) float64 { return t.Sub(start).Hours() }

// Judge fits every node's series over the samples from warmup after the
// first sample on (warmup < 0: DefaultWarmup of the run's span) and judges
// each slope against bounds.
func Judge(samples []sample.Sample, warmup time.Duration, bounds Bounds) (*Result, error) {
	if len(samples) == 0 {
		return nil, errors.New("no samples to judge")
	}
	r := &Result{Start: samples[0].Time, End: samples[0].Time}
	byNode := map[string][]sample.Sample{}
	var order []string
	for _, s := range samples {
		if s.Time.Before(r.Start) {
			r.Start = s.Time
		}
		if s.Time.After(r.End) {
			r.End = s.Time
		}
		if _, ok := byNode[s.Node]; !ok {
			order = append(order, s.Node)
		}
		byNode[s.Node] = append(byNode[s.Node], s)
	}
	if warmup < 0 {
		warmup = DefaultWarmup(r.End.Sub(r.Start))
	}
	r.FitFrom = r.Start.Add(warmup)
	var gaps []time.Duration
	for _, name := range order {
		ss := byNode[name]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Time.Before(ss[j].Time) })
		for i := 1; i < len(ss); i++ {
			gaps = append(gaps, ss[i].Time.Sub(ss[i-1].Time))
		}
		n := Node{Name: name, Samples: len(ss)}
		for k := range sample.NumSeries {
			n.Verdicts[k] = judge(ss, k, r, bounds[k])
		}
		r.Nodes = append(r.Nodes, n)
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		r.Interval = gaps[len(gaps)/2]
	}
	return r, nil
}

// judge fits one series of one node's samples (in time order).
func judge(ss []sample.Sample, k sample.Series, r *Result, bound float64) Verdict {
	v := Verdict{Series: k, Bound: bound, First: math.NaN(), Last: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	var xs, ys []float64
	for _, s := range ss {
		y := s.Values[k]
		if s.Time.Before(r.FitFrom) || math.IsNaN(y) {
			continue
		}
		xs = append(xs, Hours(s.Time, r.Start))
		ys = append(ys, y)
		if len(ys) == 1 {
			v.First, v.Min, v.Max = y, y, y
		}
		v.Last, v.Min, v.Max = y, min(v.Min, y), max(v.Max, y)
	}
	if len(ys) < MinFitted {
		v.Fit.N = len(ys)
		v.Why = fmt.Sprintf("%d samples after the warm-up, %d needed to judge", len(ys), MinFitted)
		return v
	}
	f, err := LeastSquares(xs, ys)
	v.Fit = f
	switch {
	case err != nil:
		v.Why = err.Error()
	case math.IsNaN(bound):
		v.Why = "no bound"
	case f.Slope > bound:
		v.Why = fmt.Sprintf("grows %s per hour, bound %s", Format(k, f.Slope), Format(k, bound))
	default:
		v.Pass = true
	}
	return v
}

// Format writes a value of series k in its unit: MiB for memory, a plain
// number for counts.
func Format(k sample.Series, v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.IsInf(v, 1):
		return "none"
	case k == sample.RSS || k == sample.HeapInuse:
		return fmt.Sprintf("%.2f MiB", v/MiB)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

package growth

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/tools/soak/sample"
)

func TestLeastSquares(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name             string
		xs, ys           []float64
		slope, intercept float64
		n                int
		err              error
	}{
		{"a line", []float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2, 1, 4, nil},
		{"flat", []float64{0, 1, 2}, []float64{5, 5, 5}, 0, 5, 3, nil},
		{"falling", []float64{1, 2, 3}, []float64{9, 6, 3}, -3, 12, 3, nil},
		{"scatter around a line", []float64{0, 1, 2, 3}, []float64{0, 2, 2, 4}, 1.2, 0.2, 4, nil},
		{"NaN points left out", []float64{0, 1, nan, 2, 3}, []float64{1, nan, 100, 5, 7}, 2, 1, 3, nil},
		{"bytes over hours, far from zero", []float64{100, 100.5, 101}, []float64{1e12, 1e12 + 5e6, 1e12 + 1e7}, 1e7, 1e12 - 100*1e7, 3, nil},
		{"two points", []float64{0, 2}, []float64{0, 1}, 0.5, 0, 2, nil},
		{"one point", []float64{1}, []float64{1}, 0, 0, 1, ErrTooFew},
		{"none", nil, nil, 0, 0, 0, ErrTooFew},
		{"one x", []float64{2, 2, 2}, []float64{1, 2, 3}, 0, 0, 3, ErrTooFew},
	} {
		f, err := LeastSquares(tc.xs, tc.ys)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
			continue
		}
		if f.N != tc.n {
			t.Errorf("%s: %d points, want %d", tc.name, f.N, tc.n)
		}
		if err != nil {
			continue
		}
		if !near(f.Slope, tc.slope) || !near(f.Intercept, tc.intercept) {
			t.Errorf("%s: y = %g + %g·x, want %g + %g·x", tc.name, f.Intercept, f.Slope, tc.intercept, tc.slope)
		}
	}
	if _, err := LeastSquares([]float64{1, 2}, []float64{1}); err == nil {
		t.Error("xs and ys of different lengths accepted")
	}
}

func TestStdErr(t *testing.T) {
	// Exact points: no scatter, no error. Scatter: the textbook value.
	f, _ := LeastSquares([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7})
	if f.StdErr != 0 {
		t.Errorf("exact line: stderr %g", f.StdErr)
	}
	f, _ = LeastSquares([]float64{0, 1, 2, 3}, []float64{0, 2, 2, 4})
	// residuals -0.2, 0.6, -0.6, 0.2: SSE 0.8; Sxx 5; sqrt(0.8/2/5)
	if !near(f.StdErr, math.Sqrt(0.08)) {
		t.Errorf("stderr %g, want %g", f.StdErr, math.Sqrt(0.08))
	}
	if f, _ := LeastSquares([]float64{0, 1}, []float64{0, 1}); !math.IsNaN(f.StdErr) {
		t.Errorf("two points: stderr %g, want NaN", f.StdErr)
	}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestDefaultWarmup(t *testing.T) {
	for _, tc := range []struct{ span, want time.Duration }{
		{35 * time.Minute, 210 * time.Second},
		{20 * time.Minute, 2 * time.Minute},
		{3 * time.Minute, 90 * time.Second},
		{10 * time.Hour, time.Hour},
		{0, 0},
	} {
		if got := DefaultWarmup(tc.span); got != tc.want {
			t.Errorf("DefaultWarmup(%s) = %s, want %s", tc.span, got, tc.want)
		}
	}
}

// run makes samples of one node every 5s for d, each series' value given
// by its function of the hours since the start (nil: NaN).
func run(node string, d time.Duration, f [sample.NumSeries]func(h float64) float64) []sample.Sample {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var out []sample.Sample
	for t := time.Duration(0); t <= d; t += 5 * time.Second {
		s := sample.Sample{Time: start.Add(t), Node: node}
		for k := range s.Values {
			s.Values[k] = math.NaN()
			if f[k] != nil {
				s.Values[k] = f[k](t.Hours())
			}
		}
		out = append(out, s)
	}
	return out
}

// steady is a node at rest: every series flat, memory with a saw-tooth.
func steady() [sample.NumSeries]func(float64) float64 {
	var f [sample.NumSeries]func(float64) float64
	for k := range f {
		f[k] = func(float64) float64 { return 7 }
	}
	f[sample.RSS] = func(h float64) float64 { return 30*MiB + math.Mod(h*3600, 60)/60*4*MiB }
	f[sample.HeapInuse] = func(h float64) float64 { return 8*MiB + math.Mod(h*3600, 20)/20*2*MiB }
	return f
}

// all is every series failing for why.
func all(why string) map[sample.Series]string {
	m := map[sample.Series]string{}
	for k := range sample.NumSeries {
		m[k] = why
	}
	return m
}

func TestJudge(t *testing.T) {
	with := func(k sample.Series, g func(float64) float64) [sample.NumSeries]func(float64) float64 {
		f := steady()
		f[k] = g
		return f
	}
	for _, tc := range []struct {
		name   string
		d      time.Duration
		warmup time.Duration
		f      [sample.NumSeries]func(float64) float64
		fail   map[sample.Series]string // series that fail, and a word of why
	}{
		{"steady", 30 * time.Minute, -1, steady(), nil},
		{"RSS leaks 64 MiB/h", 30 * time.Minute, -1, with(sample.RSS, func(h float64) float64 { return 30*MiB + 64*MiB*h }), map[sample.Series]string{sample.RSS: "grows 64.00 MiB"}},
		{"RSS shrinks", 30 * time.Minute, -1, with(sample.RSS, func(h float64) float64 { return 90*MiB - 64*MiB*h }), nil},
		{"a goroutine a minute", 30 * time.Minute, -1, with(sample.Goroutines, func(h float64) float64 { return 40 + math.Floor(h*60) }), map[sample.Series]string{sample.Goroutines: "grows 59.9"}},
		{"a descriptor every 5 minutes", 30 * time.Minute, -1, with(sample.FDs, func(h float64) float64 { return 20 + math.Floor(h*12) }), map[sample.Series]string{sample.FDs: "grows 11.9"}},
		{"connections pile up", 30 * time.Minute, -1, with(sample.ConnsMariaDB, func(h float64) float64 { return 4 + math.Floor(h*30) }), map[sample.Series]string{sample.ConnsMariaDB: "grows"}},
		{"start-up growth is the warm-up's", 30 * time.Minute, -1, with(sample.RSS, func(h float64) float64 { return 30*MiB + math.Min(h, 0.05)*2000*MiB }), nil},
		{"the same growth fitted from the start", 30 * time.Minute, 0, with(sample.RSS, func(h float64) float64 { return 30*MiB + math.Min(h, 0.05)*2000*MiB }), map[sample.Series]string{sample.RSS: "grows"}},
		{"no heap read", 30 * time.Minute, -1, with(sample.HeapInuse, nil), map[sample.Series]string{sample.HeapInuse: "0 samples after the warm-up"}},
		{"too short to judge", 30 * time.Second, -1, steady(), all("4 samples after the warm-up, 5 needed")},
	} {
		r, err := Judge(run("appserver-1", tc.d, tc.f), tc.warmup, DefaultBounds())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(r.Nodes) != 1 || r.Nodes[0].Name != "appserver-1" || r.Interval != 5*time.Second {
			t.Fatalf("%s: nodes %+v, interval %s", tc.name, r.Nodes, r.Interval)
		}
		for _, v := range r.Nodes[0].Verdicts {
			why, fail := tc.fail[v.Series]
			if v.Pass == fail {
				t.Errorf("%s: %s pass %v (slope %g/h, %s), want %v", tc.name, v.Series, v.Pass, v.Fit.Slope, v.Why, !fail)
			}
			if fail && !strings.Contains(v.Why, why) {
				t.Errorf("%s: %s fails with %q, want %q in it", tc.name, v.Series, v.Why, why)
			}
		}
		if r.Passed() != (len(tc.fail) == 0) || len(r.Failures()) < len(tc.fail) {
			t.Errorf("%s: passed %v, failures %v", tc.name, r.Passed(), r.Failures())
		}
	}
	if _, err := Judge(nil, -1, DefaultBounds()); err == nil {
		t.Error("no samples judged")
	}
}

// TestJudgeNodes checks each node is judged on its own samples, in the
// order the nodes appear.
func TestJudgeNodes(t *testing.T) {
	leak := steady()
	leak[sample.Goroutines] = func(h float64) float64 { return 10 + 1000*h }
	samples := append(run("b", 20*time.Minute, steady()), run("a", 20*time.Minute, leak)...)
	r, err := Judge(samples, -1, DefaultBounds())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 2 || r.Nodes[0].Name != "b" || r.Nodes[1].Name != "a" {
		t.Fatalf("nodes %+v", r.Nodes)
	}
	if !r.Nodes[0].Verdicts[sample.Goroutines].Pass || r.Nodes[1].Verdicts[sample.Goroutines].Pass {
		t.Errorf("goroutines: b %+v, a %+v", r.Nodes[0].Verdicts[sample.Goroutines], r.Nodes[1].Verdicts[sample.Goroutines])
	}
	if got := r.Failures(); len(got) != 1 || !strings.HasPrefix(got[0], "a goroutines: grows 1000.00 per hour, bound 20") {
		t.Errorf("failures %q", got)
	}
	if want := 2 * time.Minute; r.FitFrom.Sub(r.Start) != want {
		t.Errorf("fitted from %s, want %s after the start", r.FitFrom.Sub(r.Start), want)
	}
}

func TestMarkdown(t *testing.T) {
	leak := steady()
	leak[sample.FDs] = func(h float64) float64 { return 10 + math.Floor(100*h) }
	r, err := Judge(append(run("appserver-1", 10*time.Minute, steady()), run("admin-1", 10*time.Minute, leak)...), -1, DefaultBounds())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.WriteMarkdown(&b, Report{Command: "scripts/soak.sh 10m", Plot: "soak/soak.svg", Load: "bench: 100 req/s\n"}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"Command: `scripts/soak.sh 10m`",
		"**Verdict: fail.**",
		"- admin-1 fds: grows 9",
		"](soak/soak.svg)",
		"| appserver-1 | rss_bytes | 97 |",
		"| admin-1 | fds | 97 | 13 | 26 | 13 | 26 | +9",
		"| 10 | **fail**: grows 9",
		"| appserver-1 | goroutines | 97 | 7 | 7 | 7 | 7 | +0 ± 0 | 20 | pass |",
		"```text\nbench: 100 req/s\n```",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

package bench

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReportShowsOps checks a batch or include report prints operations
// per second and their ratio to the baseline, and others do not.
func TestReportShowsOps(t *testing.T) {
	lat := Latency{P50: time.Millisecond, P99: 3 * time.Millisecond}
	sum := func(tps float64, perMsg int) Summary {
		return Summary{Runs: 1, TPS: tps, TPSMin: tps, TPSMax: tps, OpsPerSec: tps * float64(perMsg), Latency: lat, ServerCPU: 160}
	}
	run := func(target string, batch int, tps float64, perMsg int) Run {
		return Run{Target: target, Batch: batch, Round: 1, Requests: int64(tps) * 8, TPS: tps, OpsPerMsg: perMsg, OpsPerSec: tps * float64(perMsg), Latency: lat}
	}
	base := sum(9000, 1)
	b1, b16, inc := sum(8000, 1), sum(1500, 16), sum(4000, 2)
	for _, tc := range []struct {
		name string
		rep  Report
		want []string // regular expressions, each matching a line
		not  []string
	}{
		{
			name: "batch sizes",
			rep: Report{
				Op: Batch, Batch: []int{1, 16}, Rounds: 1, Template: "users",
				Runs: []Run{run(TargetBEDS, 1, 8000, 1), run(TargetBEDS, 16, 1500, 16), run(TargetBaseline, 0, 9000, 1)},
				BEDS: b1, Base: &base, Ratio: ratios(&b1, &base),
				Sizes: []Sized{{1, b1, ratios(&b1, &base)}, {16, b16, ratios(&b16, &base)}},
			},
			want: []string{
				`^bench : batch of 1,16 point reads per message on template users`,
				`^ *target +round +requests +tp/s +ops/s +p50`,
				`^ *beds batch 16 +1 +12000 +1500 +24000 +1\.000ms`,
				`^ *beds batch 16 \(median\) +1 +1500 +24000 `,
				`^beds batch 16/baseline: tp/s 0\.17x  ops/s 2\.67x  p50 1\.00x`,
				`^ *target +one message is +msgs/s +ops/s +ops/s vs baseline +p50 +p99 +server µs/op`,
				`^ *beds batch 1 +a batch of 1 point read +8000 +8000 +0\.89x +1\.000ms +3\.000ms +160`,
				`^ *beds batch 16 +a batch of 16 point reads +1500 +24000 +2\.67x +1\.000ms +3\.000ms +10`,
				`^ *baseline +a point read +9000 +9000 +1\.00x `,
				`^errors: beds batch 1 none; beds batch 16 none; baseline none$`,
			},
		},
		{
			name: "include",
			rep: Report{
				Op: Include, Children: 4, Rounds: 1, Template: "users",
				Runs: []Run{run(TargetBEDS, 0, 4000, 2), run(TargetBaseline, 0, 9000, 1)},
				BEDS: inc, Base: &base, Ratio: ratios(&inc, &base),
			},
			want: []string{
				`^bench : include \(a point read with its 4 orders\)`,
				`^ *beds +1 +32000 +4000 +8000 +1\.000ms`,
				`^beds/baseline: tp/s 0\.44x  ops/s 0\.89x  p50 1\.00x`,
				`^ *beds +a point read with its 4 orders +4000 +8000 +0\.89x .* 80$`,
			},
		},
		{
			name: "server pids",
			rep: func() Report {
				r := Report{
					Op: PointRead, Rounds: 1, Template: "users", Procs: map[string]int{"rabbitmq": 2961, "mariadb": 3806},
					Runs: []Run{run(TargetBEDS, 0, 9000, 1), run(TargetBaseline, 0, 9000, 1)},
				}
				r.Runs[0].ServerCPU, r.Runs[0].ClientCPU = 55, 30
				r.Runs[0].ProcCPU = map[string]float64{"rabbitmq": 61.4, "mariadb": 40}
				// mariadb exited during the baseline's run.
				r.Runs[1].ServerCPU, r.Runs[1].ClientCPU = 52, 31
				r.Runs[1].ProcCPU = map[string]float64{"rabbitmq": 50}
				r.BEDS, r.Base = summarize(r.Runs, TargetBEDS, 0), new(summarize(r.Runs, TargetBaseline, 0))
				r.Ratio = ratios(&r.BEDS, r.Base)
				return r
			}(),
			want: []string{
				`^ *target +round +requests +tp/s +p50 +p90 +p99 +p99\.9 +max +errors +server µs/req +client µs/req +mariadb µs/req +rabbitmq µs/req *$`,
				`^ *beds +1 +72000 +9000 .* 0 +55 +30 +40 +61 *$`,
				`^ *baseline +1 +72000 +9000 .* 0 +52 +31 +- +50 *$`,
				`^ *beds \(median\) +1 +9000 .* 0 +55 +30 +40 +61 *$`,
				`^ *baseline \(median\) +1 +9000 .* 0 +52 +31 +- +50 *$`,
				`^beds/baseline: tp/s 1\.00x  p50 1\.00x  p99 1\.00x  server CPU/req 1\.06x  mariadb CPU/req n/a  rabbitmq CPU/req 1\.23x$`,
			},
		},
		{
			name: "point read",
			rep: Report{
				Op: PointRead, Rounds: 1, Template: "users",
				Runs: []Run{run(TargetBEDS, 0, 9000, 1), run(TargetBaseline, 0, 9000, 1)},
				BEDS: base, Base: &base, Ratio: ratios(&base, &base),
			},
			want: []string{`^ *target +round +requests +tp/s +p50.* +client µs/req *$`, `^beds/baseline: tp/s 1\.00x  p50.*server CPU/req 1\.00x$`},
			not:  []string{`ops/s`, `CPU/req .*CPU/req`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.rep.WriteText(&b)
			out := b.String()
			lines := strings.Split(out, "\n")
			for _, re := range tc.want {
				rx := regexp.MustCompile(re)
				found := false
				for _, l := range lines {
					found = found || rx.MatchString(l)
				}
				if !found {
					t.Errorf("no line matches %s", re)
				}
			}
			for _, re := range tc.not {
				if regexp.MustCompile(re).MatchString(out) {
					t.Errorf("report matches %s", re)
				}
			}
			if t.Failed() {
				t.Logf("report:\n%s", out)
			}
		})
	}
}

// TestProcCPUPerRun checks a further process's CPU per request is
// reported only when it was read before and after the run as the same
// process, and that the medians and ratios carry it.
func TestProcCPUPerRun(t *testing.T) {
	res := &loadResult{n: 1000, elapsed: time.Second}
	sample := func(procs map[string]procSample) cpuSample { return cpuSample{server: -1, procs: procs} }
	before := sample(map[string]procSample{
		"rabbitmq": {cpu: time.Second, start: 7},
		"mariadb":  {cpu: time.Second, start: 8},
		"gone":     {cpu: time.Second, start: 9},
		"reused":   {cpu: time.Second, start: 10},
	})
	after := sample(map[string]procSample{
		"rabbitmq": {cpu: 1060 * time.Millisecond, start: 7},
		"mariadb":  {cpu: time.Second, start: 8}, // idle: 0, not unknown
		"reused":   {cpu: 5 * time.Second, start: 11},
	})
	r := makeRun(TargetBEDS, 1, 1, res, before, after)
	want := map[string]float64{"rabbitmq": 60, "mariadb": 0}
	if !maps.Equal(r.ProcCPU, want) {
		t.Fatalf("ProcCPU %v, want %v", r.ProcCPU, want)
	}
	if b, err := json.Marshal(r); err != nil || !strings.Contains(string(b), `"proc_cpu_us_per_req":{"mariadb":0,"rabbitmq":60}`) {
		t.Errorf("JSON %s, %v", b, err)
	}
	if r.ServerCPU != 0 {
		t.Errorf("ServerCPU %v without a server reading", r.ServerCPU)
	}

	runs := []Run{
		{Target: TargetBEDS, TPS: 1, ProcCPU: map[string]float64{"rabbitmq": 60}},
		{Target: TargetBEDS, TPS: 1, ProcCPU: map[string]float64{"rabbitmq": 80, "mariadb": 10}},
		{Target: TargetBEDS, TPS: 1, ProcCPU: map[string]float64{"rabbitmq": 70}},
		{Target: TargetBaseline, TPS: 1, ProcCPU: map[string]float64{"rabbitmq": 50, "mariadb": 20}},
	}
	beds, base := summarize(runs, TargetBEDS, 0), summarize(runs, TargetBaseline, 0)
	if want := map[string]float64{"rabbitmq": 70, "mariadb": 10}; !maps.Equal(beds.ProcCPU, want) {
		t.Errorf("median %v, want %v", beds.ProcCPU, want)
	}
	if got, want := ratios(&beds, &base).ProcCPU, map[string]float64{"rabbitmq": 1.4, "mariadb": 0.5}; !maps.Equal(got, want) {
		t.Errorf("ratios %v, want %v", got, want)
	}
	delete(base.ProcCPU, "mariadb")
	if got := ratios(&beds, &base).ProcCPU; len(got) != 1 {
		t.Errorf("ratios without a baseline median: %v", got)
	}
}

// Package bench measures BEDS: a load generator (N clients sending requests
// back to back over shared/client), a latency histogram, CPU accounting
// per request, and a baseline to judge BEDS against: a minimal raw
// amqp091-go RPC server that runs the same SQL statements directly, driven
// by the same load generator through an equivalent raw client, on the same
// RabbitMQ and database, alternating with the BEDS runs.
//
// bedsctl bench is its command line; see its -h.
package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/wire"
)

// Config is one bench run.
type Config struct {
	URL      string        // the cluster's RabbitMQ (amqp://...)
	Clients  int           // concurrent clients (default 64)
	Duration time.Duration // of each measured run (default 10s), unless Requests
	Requests int64         // requests per measured run; 0: run for Duration
	Op       Op            // request kind, or Mixed
	Mix      Mix           // weights when Op is Mixed
	Payload  int           // bytes of the string field creates and updates write
	Template string        // a template shaped like users (default users)
	Warmup   time.Duration // before every measured run, not counted
	Seed     int           // records seeded for reads and updates (default 1000)
	Keep     bool          // leave seeded and created records in place
	Rounds   int           // measured runs per target (default 1; 3 with a baseline)
	Channels int           // AMQP channels of each client connection (default 4)
	Timeout  time.Duration // per request (default 30s)
	RunID    string        // prefix of every email written (default: random)

	// NodeMetrics are /metrics URLs of the nodes serving the cluster; their
	// process_cpu_seconds_total gives the node CPU per request.
	NodeMetrics []string
	// Procs names further processes whose CPU per request to report (the
	// RabbitMQ server, the database), by PID, read from /proc.
	Procs map[string]int

	// Baseline, when set, runs the baseline too, alternating with BEDS.
	Baseline *BaselineConfig
	// StartBaseline starts the baseline server; by default it runs in this
	// process (its CPU then cannot be told apart). bedsctl starts it as a
	// child process with SpawnBaseline.
	StartBaseline func(ctx context.Context, cfg BaselineConfig) (Server, error)

	// Progress receives the progress bar and notes; nil for none.
	Progress io.Writer
}

// Server is a running baseline server.
type Server interface {
	// PID is the server's process, or 0 when it shares this one.
	PID() int
	Stop() error
}

// Target names.
const (
	TargetBEDS     = "beds"
	TargetBaseline = "baseline"
)

// Run is one measured run of one target.
type Run struct {
	Target   string           `json:"target"`
	Round    int              `json:"round"`
	Requests int64            `json:"requests"`
	Elapsed  time.Duration    `json:"elapsed_ns"`
	TPS      float64          `json:"tps"`
	Latency  Latency          `json:"latency"`
	Ops      map[Op]OpStats   `json:"ops,omitempty"`
	Errors   map[string]int64 `json:"errors,omitempty"`
	// CPU per completed request, in microseconds: the server's (node or
	// baseline process; 0 when unknown), the load generator's, and each of
	// Config.Procs.
	ServerCPU float64            `json:"server_cpu_us_per_req"`
	ClientCPU float64            `json:"client_cpu_us_per_req"`
	ProcCPU   map[string]float64 `json:"proc_cpu_us_per_req,omitempty"`
}

// OpStats is one request kind's share of a mixed run.
type OpStats struct {
	Requests int64   `json:"requests"`
	Latency  Latency `json:"latency"`
}

// Summary is the median of a target's runs, metric by metric.
type Summary struct {
	Runs      int                `json:"runs"`
	TPS       float64            `json:"tps"`
	TPSMin    float64            `json:"tps_min"`
	TPSMax    float64            `json:"tps_max"`
	Latency   Latency            `json:"latency"`
	ServerCPU float64            `json:"server_cpu_us_per_req"`
	ClientCPU float64            `json:"client_cpu_us_per_req"`
	ProcCPU   map[string]float64 `json:"proc_cpu_us_per_req,omitempty"`
	Errors    map[string]int64   `json:"errors,omitempty"`
}

// Ratios are BEDS / baseline.
type Ratios struct {
	TPS float64 `json:"tps"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	CPU float64 `json:"cpu,omitempty"`
}

// Report is everything a bench measured.
type Report struct {
	RunID     string        `json:"run_id"`
	Op        Op            `json:"op"`
	Mix       string        `json:"mix,omitempty"`
	Template  string        `json:"template"`
	Clients   int           `json:"clients"`
	Duration  time.Duration `json:"duration_ns,omitempty"`
	Requests  int64         `json:"requests,omitempty"`
	Warmup    time.Duration `json:"warmup_ns"`
	Payload   int           `json:"payload"`
	Rounds    int           `json:"rounds"`
	Seeded    int           `json:"seeded"`
	Machine   string        `json:"machine"`
	Baseline  string        `json:"baseline,omitempty"` // its settings
	Runs      []Run         `json:"runs"`
	BEDS      Summary       `json:"beds"`
	Base      *Summary      `json:"baseline_summary,omitempty"`
	Ratio     *Ratios       `json:"ratio,omitempty"`
	Cleanup   string        `json:"cleanup,omitempty"`
	startedAt time.Time
}

func (c *Config) defaults() error {
	if c.Clients <= 0 {
		c.Clients = 64
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Op == "" {
		c.Op = PointRead
	}
	if c.Op == Mixed && len(c.Mix) == 0 {
		return errors.New("op mixed needs a mix, e.g. read=80,create=10,update=10")
	}
	if c.Template == "" {
		c.Template = "users"
	}
	if c.Seed <= 0 {
		c.Seed = 1000
	}
	if c.Rounds <= 0 {
		c.Rounds = 1
		if c.Baseline != nil {
			c.Rounds = 3
		}
	}
	if c.Channels <= 0 {
		c.Channels = 4
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.RunID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.RunID = "bench-" + hex.EncodeToString(b)
	}
	if strings.ContainsAny(c.RunID, `%_\`) {
		return fmt.Errorf("run ID %q must not hold %%, _ or \\ (they are LIKE wildcards)", c.RunID)
	}
	if c.StartBaseline == nil {
		c.StartBaseline = InProcessBaseline
	}
	return nil
}

// Bench runs cfg and returns its report. It seeds the records reads and
// updates need, alternates BEDS and baseline runs (each after its warmup),
// and removes every record it wrote unless cfg.Keep.
func Bench(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	pk := newPicker(cfg.Op, cfg.Mix)
	rep := &Report{
		RunID: cfg.RunID, Op: cfg.Op, Template: cfg.Template, Clients: cfg.Clients, Duration: cfg.Duration,
		Requests: cfg.Requests, Warmup: cfg.Warmup, Payload: cfg.Payload, Rounds: cfg.Rounds,
		Machine: Machine(), startedAt: time.Now(),
	}
	if cfg.Requests > 0 {
		rep.Duration = 0
	}
	if cfg.Op == Mixed {
		rep.Mix = cfg.Mix.String()
	}
	pr := newProgress(cfg.Progress)
	work := &Workload{Template: cfg.Template, RunID: cfg.RunID, Payload: payload(cfg.Payload)}

	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	beds, err := DialBEDS(dctx, cfg.URL, client.Options{Name: "bedsctl-bench", Channels: cfg.Channels, Timeout: cfg.Timeout})
	cancel()
	if err != nil {
		return nil, err
	}
	defer beds.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = beds.c.Do(pctx, &wire.Request{Op: wire.OpPing})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("ping: %w (is an appserver consuming on this RabbitMQ and vhost?)", err)
	}

	// Whatever happens from here on, remove what the run wrote.
	defer func() {
		if cfg.Keep {
			rep.Cleanup = "kept: records under " + cfg.RunID + "-"
			return
		}
		rep.Cleanup = cleanup(beds, work, cfg.RunID+"-", pr)
	}()

	if pk.needsSeed() {
		t0 := time.Now()
		keys, err := seed(ctx, beds, work, cfg.Seed, min(cfg.Clients, 16))
		if err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		work.Keys = keys
		rep.Seeded = len(keys)
		pr.note("seeded %d %s records under %s- in %s", len(keys), cfg.Template, cfg.RunID, time.Since(t0).Round(time.Millisecond))
	}

	type target struct {
		name string
		t    Target
		cpu  func() (CPU, error)
	}
	targets := []target{{name: TargetBEDS, t: beds, cpu: nodeCPU(ctx, cfg.NodeMetrics)}}
	if cfg.Baseline != nil {
		bc := *cfg.Baseline
		if bc.URL == "" {
			bc.URL = cfg.URL
		}
		if bc.Queue == "" {
			bc.Queue = "beds.bench.baseline." + cfg.RunID
		}
		srv, err := cfg.StartBaseline(ctx, bc)
		if err != nil {
			return nil, fmt.Errorf("baseline server: %w", err)
		}
		defer srv.Stop()
		rep.Baseline = fmt.Sprintf("queue %s, %d workers, prefetch %d, %d db conns, statements %s, durable %v, confirmed write replies %v, pid %d",
			bc.Queue, orDefault(bc.Workers, 16), orDefault(bc.Prefetch, 64), orDefault(bc.MaxConns, 16), cmp(bc.Stmt, StmtPrepared), bc.Durable, bc.Confirm, srv.PID())
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		raw, err := DialRaw(dctx, cfg.URL, bc.Queue, cfg.Channels, cfg.Timeout)
		cancel()
		if err != nil {
			return nil, err
		}
		defer raw.Close()
		var cpu func() (CPU, error)
		if pid := srv.PID(); pid > 0 {
			cpu = func() (CPU, error) { return ProcCPU(pid) }
		}
		targets = append(targets, target{name: TargetBaseline, t: raw, cpu: cpu})
	}

	var phase atomic.Int64
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		for _, tg := range targets {
			if ctx.Err() != nil {
				break
			}
			tag := fmt.Sprintf("%s%d", tg.name[:4], phase.Add(1))
			if cfg.Warmup > 0 {
				l := &load{target: tg.t, picker: pk, work: work, clients: cfg.Clients, duration: cfg.Warmup, tag: tag + "w", seed: uint64(phase.Load())}
				stop := pr.track(fmt.Sprintf("%s %d warmup", tg.name, round), l)
				l.run(ctx)
				stop()
			}
			l := &load{target: tg.t, picker: pk, work: work, clients: cfg.Clients, duration: cfg.Duration,
				requests: cfg.Requests, tag: tag, seed: uint64(phase.Load()) << 32}
			before := sampleCPU(tg.cpu, cfg.Procs)
			stop := pr.track(fmt.Sprintf("%s %d", tg.name, round), l)
			res := l.run(ctx)
			stop()
			after := sampleCPU(tg.cpu, cfg.Procs)
			rep.Runs = append(rep.Runs, makeRun(tg.name, round, res, before, after))
			if pk.creates() && !cfg.Keep {
				// Keep the table the same size for every run.
				cleanup(beds, work, cfg.RunID+"-"+tag, nil)
			}
		}
	}
	if len(rep.Runs) == 0 {
		return nil, ctx.Err()
	}
	rep.BEDS = summarize(rep.Runs, TargetBEDS)
	if cfg.Baseline != nil {
		b := summarize(rep.Runs, TargetBaseline)
		rep.Base = &b
		rep.Ratio = &Ratios{
			TPS: ratio(rep.BEDS.TPS, b.TPS),
			P50: ratio(float64(rep.BEDS.Latency.P50), float64(b.Latency.P50)),
			P99: ratio(float64(rep.BEDS.Latency.P99), float64(b.Latency.P99)),
			CPU: ratio(rep.BEDS.ServerCPU, b.ServerCPU),
		}
	}
	return rep, nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func ratio(a, b float64) float64 {
	if b == 0 || a == 0 {
		return 0
	}
	return a / b
}

// cpuSample is the CPU times read around a run; unknown ones are -1.
type cpuSample struct {
	server CPU
	client CPU
	procs  map[string]CPU
}

func nodeCPU(ctx context.Context, urls []string) func() (CPU, error) {
	if len(urls) == 0 {
		return nil
	}
	return func() (CPU, error) {
		var sum CPU
		for _, u := range urls {
			c, err := NodeCPU(ctx, u)
			if err != nil {
				return 0, err
			}
			sum += c
		}
		return sum, nil
	}
}

func sampleCPU(server func() (CPU, error), procs map[string]int) cpuSample {
	s := cpuSample{server: -1, client: SelfCPU(), procs: map[string]CPU{}}
	if server != nil {
		if c, err := server(); err == nil {
			s.server = c
		} else {
			fmt.Fprintln(os.Stderr, "bench: server CPU:", err)
		}
	}
	for name, pid := range procs {
		if c, err := ProcCPU(pid); err == nil {
			s.procs[name] = c
		}
	}
	return s
}

func perReq(d CPU, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d) / float64(time.Microsecond) / float64(n)
}

func makeRun(target string, round int, res *loadResult, before, after cpuSample) Run {
	r := Run{
		Target: target, Round: round, Requests: res.n, Elapsed: res.elapsed,
		TPS: float64(res.n) / res.elapsed.Seconds(), Latency: res.hist.Summary(),
		ClientCPU: perReq(after.client-before.client, res.n),
	}
	if len(res.errors) > 0 {
		r.Errors = res.errors
	}
	if len(res.ops) > 1 {
		r.Ops = map[Op]OpStats{}
		for op, h := range res.ops {
			r.Ops[op] = OpStats{Requests: h.Count(), Latency: h.Summary()}
		}
	}
	if before.server >= 0 && after.server >= 0 {
		r.ServerCPU = perReq(after.server-before.server, res.n)
	}
	for name, b := range before.procs {
		if a, ok := after.procs[name]; ok {
			if r.ProcCPU == nil {
				r.ProcCPU = map[string]float64{}
			}
			r.ProcCPU[name] = perReq(a-b, res.n)
		}
	}
	return r
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize takes the median of target's runs, metric by metric.
func summarize(runs []Run, target string) Summary {
	var s Summary
	var tps, p50, p90, p99, p999, mx, mean, srv, cli []float64
	procs := map[string][]float64{}
	for _, r := range runs {
		if r.Target != target {
			continue
		}
		s.Runs++
		tps = append(tps, r.TPS)
		p50 = append(p50, float64(r.Latency.P50))
		p90 = append(p90, float64(r.Latency.P90))
		p99 = append(p99, float64(r.Latency.P99))
		p999 = append(p999, float64(r.Latency.P999))
		mx = append(mx, float64(r.Latency.Max))
		mean = append(mean, float64(r.Latency.Mean))
		srv = append(srv, r.ServerCPU)
		cli = append(cli, r.ClientCPU)
		for k, v := range r.ProcCPU {
			procs[k] = append(procs[k], v)
		}
		for c, n := range r.Errors {
			if s.Errors == nil {
				s.Errors = map[string]int64{}
			}
			s.Errors[c] += n
		}
	}
	if s.Runs == 0 {
		return s
	}
	s.TPS, s.TPSMin, s.TPSMax = median(tps), slices.Min(tps), slices.Max(tps)
	d := func(xs []float64) time.Duration { return time.Duration(median(xs)) }
	s.Latency = Latency{P50: d(p50), P90: d(p90), P99: d(p99), P999: d(p999), Max: d(mx), Mean: d(mean)}
	s.ServerCPU, s.ClientCPU = median(srv), median(cli)
	for k, v := range procs {
		if s.ProcCPU == nil {
			s.ProcCPU = map[string]float64{}
		}
		s.ProcCPU[k] = median(v)
	}
	return s
}

// seed creates n records through BEDS with conc clients and returns their
// keys.
func seed(ctx context.Context, t Target, work *Workload, n, conc int) ([]int64, error) {
	keys := make([]int64, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				reply, err := t.Do(ctx, wire.RouteWrite, work.seedBody(i))
				if err == nil {
					keys[i], err = intKey(reply.Key)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("record %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return keys, first
}

func intKey(k any) (int64, error) {
	switch v := k.(type) {
	case json.Number:
		return v.Int64()
	case float64:
		return int64(v), nil
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("create answered key %v (%T): the bench needs an int key", k, k)
}

// cleanup deletes every record whose email starts with prefix and says
// what it did.
func cleanup(t Target, work *Workload, prefix string, pr *progress) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	reply, err := t.Do(ctx, wire.RouteWrite, work.cleanupBody(prefix))
	var we *wire.Error
	switch {
	case errors.As(err, &we) && we.Code == wire.CodeNotFound:
		return "nothing to remove"
	case err != nil:
		msg := fmt.Sprintf("cleanup of %s* failed: %v", prefix, err)
		fmt.Fprintln(os.Stderr, "bench:", msg)
		return msg
	}
	msg := fmt.Sprintf("removed %d records under %s in %s", reply.Affected, prefix, time.Since(t0).Round(time.Millisecond))
	pr.note("%s", msg)
	return msg
}

// Machine describes the machine the bench ran on.
func Machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				mem = fmt.Sprintf(", %d GiB", (kb+512*1024)>>20)
			}
		}
	}
	return fmt.Sprintf("%d cores%s, %s, %s/%s, %s", runtime.NumCPU(), mem, cmp(model, "unknown CPU"), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// InProcessBaseline runs the baseline server in this process. Its CPU
// cannot be told apart from the load generator's, so it reports PID 0.
func InProcessBaseline(ctx context.Context, cfg BaselineConfig) (Server, error) {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- ServeBaseline(ctx, cfg, func() { close(ready) }) }()
	select {
	case <-ready:
		return &inProc{cancel: cancel, done: done}, nil
	case err := <-done:
		cancel()
		return nil, err
	}
}

type inProc struct {
	cancel context.CancelFunc
	done   chan error
}

func (s *inProc) PID() int { return 0 }
func (s *inProc) Stop() error {
	s.cancel()
	return <-s.done
}

// BaselineArgs are the flags the baseline server's command takes for cfg.
func BaselineArgs(cfg BaselineConfig) []string {
	return []string{
		"--url", cfg.URL, "--dsn", cfg.DSN, "--queue", cfg.Queue,
		"--workers", strconv.Itoa(cfg.Workers), "--prefetch", strconv.Itoa(cfg.Prefetch),
		"--conns", strconv.Itoa(cfg.MaxConns), "--stmt", cmp(cfg.Stmt, StmtPrepared),
		"--durable=" + strconv.FormatBool(cfg.Durable), "--confirm=" + strconv.FormatBool(cfg.Confirm),
	}
}

// SpawnBaseline returns a StartBaseline that runs the baseline server as a
// child process, exe with args followed by BaselineArgs, so that its CPU
// time is its own. The child must print a line "ready" on its standard
// output once it consumes, and stop cleanly on SIGTERM.
func SpawnBaseline(exe string, args ...string) func(context.Context, BaselineConfig) (Server, error) {
	return func(ctx context.Context, cfg BaselineConfig) (Server, error) {
		cmd := exec.Command(exe, append(slices.Clone(args), BaselineArgs(cfg)...)...)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		s := &child{cmd: cmd, done: make(chan error, 1)}
		lines := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				default:
				}
			}
			s.done <- cmd.Wait()
		}()
		select {
		case line := <-lines:
			if line != "ready" {
				s.Stop()
				return nil, fmt.Errorf("baseline server said %q", line)
			}
			return s, nil
		case err := <-s.done:
			return nil, fmt.Errorf("baseline server exited: %v", err)
		case <-time.After(20 * time.Second):
			s.Stop()
			return nil, errors.New("baseline server not ready within 20s")
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		}
	}
}

type child struct {
	cmd  *exec.Cmd
	done chan error
	once sync.Once
	err  error
}

func (c *child) PID() int { return c.cmd.Process.Pid }

func (c *child) Stop() error {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case c.err = <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			c.err = <-c.done
		}
	})
	return c.err
}

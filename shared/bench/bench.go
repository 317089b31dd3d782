// Package bench measures BEDS: a load generator (N clients sending requests
// back to back over shared/client), a latency histogram, CPU accounting
// per request, and a baseline to judge BEDS against: a minimal raw
// amqp091-go RPC server that runs the same SQL statements directly, driven
// by the same load generator through an equivalent raw client, on the same
// RabbitMQ and database, alternating with the BEDS runs.
//
// Throughput is counted in messages and in database operations: most
// requests are one operation, a batch of N reads is N, a read with include
// is two (Workload.OpsPerMessage). Against a batch or an include the
// baseline still answers one point read per message, which is the
// comparison they exist for.
//
// A delete removes its record, so every measured delete has a record of
// its own: before the runs, each target (BEDS, the baseline) gets
// Config.DeleteSeed records created through the node in batches, and its
// deletes take their keys from that pool, each key once, warmups
// included. A run that has used up its pool stops, and the bench fails
// with an error naming the flag to raise, rather than measure not_found
// replies; records left over are removed with the others at the end.
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
	"math"
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
	"github.com/beds-project/beds/shared/procstat"
	"github.com/beds-project/beds/shared/wire"
)

// Config is one bench run.
type Config struct {
	URL      string        // the cluster's RabbitMQ (amqp://...)
	Clients  int           // concurrent clients (default 64)
	Duration time.Duration // of each measured run (default 10s), unless Requests
	Requests int64         // requests per measured run; 0: run for Duration
	// Rate paces every run (warmups too) at this many requests per second
	// across all clients, for a steady load below what the machine can
	// take (a soak); a client still waits for its reply before its next
	// request, so Clients bounds what is in flight. 0: unpaced, each
	// client sends as fast as replies come.
	Rate float64
	Op   Op  // request kind, or Mixed
	Mix  Mix // weights when Op is Mixed
	// Batch lists the sizes (reads per message) of Op Batch, each run in
	// turn against the same seeded records and the same baseline runs
	// (default 16). Other ops take none.
	Batch []int
	// Children is how many ChildTemplate records Op Include seeds per
	// record, 1..MaxChildren (default 4).
	Children int
	// Record asks the node to record every request's lineage ("record":
	// true); reads are not recorded otherwise. It measures what recording
	// costs.
	Record   bool
	Payload  int           // bytes of the string field creates and updates write
	Template string        // a template shaped like users (default users)
	Warmup   time.Duration // before every measured run, not counted
	Seed     int           // records seeded for reads and updates (default 1000)
	Keep     bool          // leave seeded and created records in place
	Rounds   int           // measured runs per target (default 1; 3 with a baseline)
	Channels int           // AMQP channels of each client connection (default 4)
	Timeout  time.Duration // per request (default 30s)
	RunID    string        // prefix of every email written (default: random)

	// DeleteSeed is how many records Op Delete seeds for each target, each
	// deleted once. 0 derives it from the run: Rounds × (Requests, or
	// Duration at DeleteRate, plus Warmup at DeleteRate).
	DeleteSeed int

	// NodeMetrics are /metrics URLs of the nodes serving the cluster; their
	// process_cpu_seconds_total gives the node CPU per request.
	NodeMetrics []string
	// Procs names further processes on this machine whose CPU per request
	// to report (the RabbitMQ server, the database: bedsctl bench
	// --server-pid), by PID; procstat.CPU reads them around every measured run,
	// where the node's CPU is read.
	Procs map[string]int

	// Session is a session token (tercero's login) the measured BEDS
	// requests carry in x-beds-session, so the node enforces the
	// template's [access] rules for its user; seeding and cleanup go
	// without it, as the client's RabbitMQ user.
	Session string
	// Against, when set, names a template the BEDS runs are compared
	// with instead of the baseline server: the same load on the same node
	// reading that template without Session (a copy of Template without
	// [access], say). Only for point-read and filtered-read.
	Against string

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
	// TargetAgainst is the BEDS target of Config.Against: it stands
	// where the baseline would, and the ratios compare with it.
	TargetAgainst = "against"
)

// Run is one measured run of one target.
type Run struct {
	Target string `json:"target"`
	// Batch is the batch size of an Op Batch run of BEDS.
	Batch    int           `json:"batch,omitempty"`
	Round    int           `json:"round"`
	Requests int64         `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	TPS      float64       `json:"tps"` // messages (requests) per second
	// OpsPerMsg is the database operations one request asks for
	// (Workload.OpsPerMessage); OpsPerSec is TPS times that. Like TPS it
	// counts failed requests too: a run with errors measures nothing.
	OpsPerMsg int              `json:"ops_per_msg"`
	OpsPerSec float64          `json:"ops_per_s"`
	Latency   Latency          `json:"latency"`
	Ops       map[Op]OpStats   `json:"ops,omitempty"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	// CPU per completed request, in microseconds: the server's (node or
	// baseline process; 0 when unknown), the load generator's, and each of
	// Config.Procs by name; a process that could not be read before and
	// after the run (it exited, or its pid now names another) has no
	// entry.
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
	Runs      int     `json:"runs"`
	TPS       float64 `json:"tps"`
	TPSMin    float64 `json:"tps_min"`
	TPSMax    float64 `json:"tps_max"`
	OpsPerSec float64 `json:"ops_per_s"`
	Latency   Latency `json:"latency"`
	ServerCPU float64 `json:"server_cpu_us_per_req"`
	ClientCPU float64 `json:"client_cpu_us_per_req"`
	// ProcCPU is the median of each Config.Procs process over the runs
	// that have it.
	ProcCPU map[string]float64 `json:"proc_cpu_us_per_req,omitempty"`
	Errors  map[string]int64   `json:"errors,omitempty"`
}

// Ratios are BEDS / baseline.
type Ratios struct {
	TPS float64 `json:"tps"`
	// Ops compares database operations per second: what a batch or an
	// include gains over the baseline's one operation per message.
	Ops float64 `json:"ops"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	CPU float64 `json:"cpu,omitempty"`
	// ProcCPU compares each Config.Procs process's CPU per request; a
	// name without a median on both sides is left out.
	ProcCPU map[string]float64 `json:"proc_cpu,omitempty"`
}

// Report is everything a bench measured.
type Report struct {
	RunID    string        `json:"run_id"`
	Op       Op            `json:"op"`
	Mix      string        `json:"mix,omitempty"`
	Batch    []int         `json:"batch,omitempty"`    // Op Batch's sizes
	Children int           `json:"children,omitempty"` // Op Include's children per record
	Record   bool          `json:"record,omitempty"`   // every request asked to be recorded
	Template string        `json:"template"`
	Clients  int           `json:"clients"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Requests int64         `json:"requests,omitempty"`
	Rate     float64       `json:"rate,omitempty"` // requests per second the runs were paced at; 0: unpaced
	Warmup   time.Duration `json:"warmup_ns"`
	Payload  int           `json:"payload"`
	Rounds   int           `json:"rounds"`
	Seeded   int           `json:"seeded"`
	Machine  string        `json:"machine"`
	Baseline string        `json:"baseline,omitempty"` // its settings
	Session  bool          `json:"session,omitempty"`  // BEDS requests carried a session token
	Against  string        `json:"against,omitempty"`  // the template of TargetAgainst
	// Procs are Config.Procs, the processes whose CPU per request the
	// runs report, name -> pid.
	Procs map[string]int `json:"procs,omitempty"`
	Runs  []Run          `json:"runs"`

	// DeleteSeed is the records Op Delete seeded for each target.
	DeleteSeed int `json:"delete_seed,omitempty"`

	// BEDS and Ratio summarize BEDS's runs; for Op Batch those of the
	// first size, and Sizes has every size, in the order given.
	BEDS      Summary  `json:"beds"`
	Sizes     []Sized  `json:"sizes,omitempty"`
	Base      *Summary `json:"baseline_summary,omitempty"`
	Ratio     *Ratios  `json:"ratio,omitempty"`
	Cleanup   string   `json:"cleanup,omitempty"`
	startedAt time.Time
}

// Sized is BEDS's result at one batch size of Op Batch.
type Sized struct {
	Batch int     `json:"batch"`
	BEDS  Summary `json:"beds"`
	Ratio *Ratios `json:"ratio,omitempty"` // to the baseline's point read
}

// Failed reports whether any request of any run failed.
func (r *Report) Failed() bool {
	return slices.ContainsFunc(r.Runs, func(run Run) bool { return len(run.Errors) > 0 })
}

func (c *Config) defaults() error {
	if c.Clients <= 0 {
		c.Clients = 64
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("rate %v: want requests per second, or 0 for unpaced", c.Rate)
	}
	if c.Op == "" {
		c.Op = PointRead
	}
	if c.Op == Mixed && len(c.Mix) == 0 {
		return errors.New("op mixed needs a mix, e.g. read=80,create=10,update=10")
	}
	switch {
	case c.Op == Batch && len(c.Batch) == 0:
		c.Batch = []int{16}
	case c.Op != Batch && len(c.Batch) > 0:
		return fmt.Errorf("batch sizes apply to op batch, not %s", c.Op)
	case c.Op == Include && c.Children == 0:
		c.Children = 4
	case c.Op != Include && c.Children != 0:
		return fmt.Errorf("children apply to op include, not %s", c.Op)
	}
	for _, n := range c.Batch {
		if n < 1 || n > wire.MaxBatch {
			return fmt.Errorf("batch size %d: want 1..%d", n, wire.MaxBatch)
		}
	}
	if c.Op == Include && (c.Children < 1 || c.Children > MaxChildren) {
		return fmt.Errorf("children %d: want 1..%d", c.Children, MaxChildren)
	}
	switch {
	case c.Op != Delete && c.DeleteSeed != 0:
		return fmt.Errorf("a delete seed applies to op delete, not %s", c.Op)
	case c.DeleteSeed < 0:
		return fmt.Errorf("delete seed %d: want 0 (derived from the run) or more", c.DeleteSeed)
	}
	if c.Template == "" {
		c.Template = "users"
	}
	switch {
	case c.Against != "" && c.Baseline != nil:
		return errors.New("against and baseline are two ways to compare: give one")
	case c.Against != "" && c.Op != PointRead && c.Op != FilteredRead:
		return fmt.Errorf("against compares point-read and filtered-read runs, not %s", c.Op)
	case c.Against == c.Template && c.Session == "":
		return fmt.Errorf("against %s is the measured template itself: give a session or another template", c.Against)
	}
	if c.Seed <= 0 {
		c.Seed = 1000
	}
	if c.Rounds <= 0 {
		c.Rounds = 1
		if c.Baseline != nil || c.Against != "" {
			c.Rounds = 3
		}
	}
	if c.Op == Delete && c.DeleteSeed == 0 {
		c.DeleteSeed = c.defaultDeleteSeed()
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

// DeleteRate is the deletes per second of one target that the default
// Config.DeleteSeed provides for, in a run by Duration and in every
// warmup. It is above what a node or the baseline deletes on the 2-core
// machine docs/performance.md measures on (the baseline's one-CALL delete
// passed 4,000/s); a faster one needs a larger DeleteSeed.
const DeleteRate = 8000

// defaultDeleteSeed is Config.DeleteSeed's default: enough records for
// every round's measured run (Requests, or Duration at DeleteRate) and
// warmup (Warmup at DeleteRate).
func (c *Config) defaultDeleteSeed() int {
	at := func(d time.Duration) int64 { return int64(math.Ceil(d.Seconds() * DeleteRate)) }
	per := c.Requests
	if per <= 0 {
		per = at(c.Duration)
	}
	if c.Warmup > 0 {
		per += at(c.Warmup)
	}
	return int(min(int64(c.Rounds)*per, math.MaxInt32))
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
		RunID: cfg.RunID, Op: cfg.Op, Batch: cfg.Batch, Children: cfg.Children, Record: cfg.Record, Template: cfg.Template, Clients: cfg.Clients, Duration: cfg.Duration,
		Requests: cfg.Requests, Rate: cfg.Rate, Warmup: cfg.Warmup, Payload: cfg.Payload, Rounds: cfg.Rounds, DeleteSeed: cfg.DeleteSeed,
		Session: cfg.Session != "", Against: cfg.Against, Procs: cfg.Procs,
		Machine: Machine(), startedAt: time.Now(),
	}
	if cfg.Requests > 0 {
		rep.Duration = 0
	}
	if cfg.Op == Mixed {
		rep.Mix = cfg.Mix.String()
	}
	pr := newProgress(cfg.Progress)
	work := &Workload{Template: cfg.Template, RunID: cfg.RunID, Payload: payload(cfg.Payload), Children: cfg.Children, Record: cfg.Record}

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
			if cfg.Op == Include {
				rep.Cleanup += " and their " + ChildTemplate
			}
			return
		}
		var done []string
		if cfg.Op == Include && len(work.Keys) > 0 {
			// Children first: they may hold their parent's key.
			done = append(done, cleanupChildren(beds, work, pr))
		}
		rep.Cleanup = strings.Join(append(done, cleanup(beds, work, cfg.RunID+"-", pr)), "; ")
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
	if cfg.Op == Include {
		t0 := time.Now()
		var made atomic.Int64
		err := seedBatches(ctx, beds, work.childSeedBodies(work.Keys), min(cfg.Clients, 16), func(_ int, items []wire.Reply) error {
			made.Add(int64(len(items)))
			return nil
		})
		n := made.Load()
		if err == nil && n != int64(len(work.Keys)*cfg.Children) {
			err = fmt.Errorf("the node created %d of %d", n, len(work.Keys)*cfg.Children)
		}
		if err != nil {
			return nil, fmt.Errorf("seed %s: %w (include needs a node serving batch, the %s template and REL user_orders)", ChildTemplate, err, ChildTemplate)
		}
		pr.note("seeded %d %s records, %d per %s record, in %s", n, ChildTemplate, cfg.Children, cfg.Template, time.Since(t0).Round(time.Millisecond))
	}

	// A target is run once per round; BEDS once per batch size.
	type target struct {
		name  string
		label string // in the progress bar
		batch int
		t     Target
		pk    picker
		work  *Workload
		cpu   func() (CPU, error)
	}
	var targets []target
	bedsCPU := nodeCPU(ctx, cfg.NodeMetrics)
	if cfg.Op == Batch {
		for _, n := range cfg.Batch {
			w := *work
			w.Batch = n
			targets = append(targets, target{name: TargetBEDS, label: fmt.Sprintf("%s batch %d", TargetBEDS, n), batch: n, t: beds, pk: pk, work: &w, cpu: bedsCPU})
		}
	} else {
		var measured Target = beds
		if cfg.Session != "" {
			measured = &sessionTarget{BEDS: beds, token: cfg.Session}
		}
		targets = append(targets, target{name: TargetBEDS, label: TargetBEDS, t: measured, pk: pk, work: work, cpu: bedsCPU})
	}
	if cfg.Against != "" {
		w := *work
		w.Template = cfg.Against
		targets = append(targets, target{name: TargetAgainst, label: TargetAgainst + " " + cfg.Against, t: beds, pk: pk, work: &w, cpu: bedsCPU})
	}
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
			cpu = func() (CPU, error) {
				c, _, err := procstat.CPU(pid)
				return c, err
			}
		}
		// The baseline answers one operation per message: against a batch
		// or an include it runs the point read.
		bpk := pk
		if cfg.Op.countsOps() {
			bpk = newPicker(PointRead, nil)
		}
		targets = append(targets, target{name: TargetBaseline, label: TargetBaseline, t: raw, pk: bpk, work: work, cpu: cpu})
	}
	if cfg.Op == Delete {
		// Each target deletes records of its own, seeded through the node.
		for i := range targets {
			tg := &targets[i]
			t0 := time.Now()
			pr.note("seeding %d %s records for %s to delete", cfg.DeleteSeed, cfg.Template, tg.name)
			keys, err := seedDeletes(ctx, beds, work, "d"+tg.name[:4], cfg.DeleteSeed, min(cfg.Clients, 16))
			if err != nil {
				return nil, fmt.Errorf("seed the records %s deletes: %w", tg.name, err)
			}
			w := *tg.work
			w.deletes = newKeyPool(keys)
			tg.work = &w
			pr.note("seeded %d %s records for %s to delete in %s", len(keys), cfg.Template, tg.name, time.Since(t0).Round(time.Millisecond))
		}
	}
	// usedUp explains a run stopped for want of records to delete.
	usedUp := func(err error, run string, tg *target) error {
		hint := ""
		if cfg.Requests == 0 {
			hint = ", or run by --requests, which the default covers"
		}
		return fmt.Errorf("%s: %w (all %d seeded for %s): give --delete-seed more than %d%s",
			run, err, tg.work.deletes.size(), tg.name, cfg.DeleteSeed, hint)
	}

	var phase atomic.Int64
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		for _, tg := range targets {
			if ctx.Err() != nil {
				break
			}
			tag := fmt.Sprintf("%s%d", tg.name[:4], phase.Add(1))
			if cfg.Warmup > 0 {
				l := &load{target: tg.t, picker: tg.pk, work: tg.work, clients: cfg.Clients, duration: cfg.Warmup, tag: tag + "w", seed: uint64(phase.Load()), rate: cfg.Rate}
				stop := pr.track(fmt.Sprintf("%s %d warmup", tg.label, round), l)
				res := l.run(ctx)
				stop()
				if res.err != nil {
					return nil, usedUp(res.err, fmt.Sprintf("%s %d warmup", tg.label, round), &tg)
				}
			}
			l := &load{target: tg.t, picker: tg.pk, work: tg.work, clients: cfg.Clients, duration: cfg.Duration,
				requests: cfg.Requests, tag: tag, seed: uint64(phase.Load()) << 32, rate: cfg.Rate}
			before := sampleCPU(tg.cpu, cfg.Procs)
			stop := pr.track(fmt.Sprintf("%s %d", tg.label, round), l)
			res := l.run(ctx)
			stop()
			if res.err != nil {
				return nil, usedUp(res.err, fmt.Sprintf("%s %d", tg.label, round), &tg)
			}
			after := sampleCPU(tg.cpu, cfg.Procs)
			run := makeRun(tg.name, round, tg.pk.opsPerMessage(tg.work), res, before, after)
			run.Batch = tg.batch
			rep.Runs = append(rep.Runs, run)
			if pk.creates() && !cfg.Keep {
				// Keep the table the same size for every run.
				cleanup(beds, work, cfg.RunID+"-"+tag, nil)
			}
		}
	}
	if len(rep.Runs) == 0 {
		return nil, ctx.Err()
	}
	for _, n := range cfg.Batch {
		rep.Sizes = append(rep.Sizes, Sized{Batch: n, BEDS: summarize(rep.Runs, TargetBEDS, n)})
	}
	if len(rep.Sizes) > 0 {
		rep.BEDS = rep.Sizes[0].BEDS
	} else {
		rep.BEDS = summarize(rep.Runs, TargetBEDS, 0)
	}
	if cfg.Baseline != nil || cfg.Against != "" {
		name := TargetBaseline
		if cfg.Against != "" {
			name = TargetAgainst
		}
		b := summarize(rep.Runs, name, 0)
		rep.Base = &b
		rep.Ratio = ratios(&rep.BEDS, &b)
		for i := range rep.Sizes {
			rep.Sizes[i].Ratio = ratios(&rep.Sizes[i].BEDS, &b)
		}
	}
	return rep, nil
}

// ratios compares a BEDS summary with the baseline's.
func ratios(beds, base *Summary) *Ratios {
	r := &Ratios{
		TPS: ratio(beds.TPS, base.TPS),
		Ops: ratio(beds.OpsPerSec, base.OpsPerSec),
		P50: ratio(float64(beds.Latency.P50), float64(base.Latency.P50)),
		P99: ratio(float64(beds.Latency.P99), float64(base.Latency.P99)),
		CPU: ratio(beds.ServerCPU, base.ServerCPU),
	}
	for name, b := range beds.ProcCPU {
		if v := ratio(b, base.ProcCPU[name]); v != 0 {
			if r.ProcCPU == nil {
				r.ProcCPU = map[string]float64{}
			}
			r.ProcCPU[name] = v
		}
	}
	return r
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

// cpuSample is the CPU times read around a run; unknown ones are -1,
// and procs has only the processes that could be read.
type cpuSample struct {
	server CPU
	client CPU
	procs  map[string]procSample
}

// procSample is one reading of a Config.Procs process.
type procSample struct {
	cpu   CPU
	start int64 // its start time: a pid reused in between has another
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
	s := cpuSample{server: -1, client: SelfCPU(), procs: map[string]procSample{}}
	if server != nil {
		if c, err := server(); err == nil {
			s.server = c
		} else {
			fmt.Fprintln(os.Stderr, "bench: server CPU:", err)
		}
	}
	for name, pid := range procs {
		if c, start, err := procstat.CPU(pid); err == nil {
			s.procs[name] = procSample{cpu: c, start: start}
		} else {
			fmt.Fprintf(os.Stderr, "bench: %s (pid %d) CPU: %v\n", name, pid, err)
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

// makeRun makes the Run of one load result of a target whose requests
// each ask for opsPerMsg database operations.
func makeRun(target string, round, opsPerMsg int, res *loadResult, before, after cpuSample) Run {
	r := Run{
		Target: target, Round: round, Requests: res.n, Elapsed: res.elapsed,
		TPS: float64(res.n) / res.elapsed.Seconds(), Latency: res.hist.Summary(),
		OpsPerMsg: opsPerMsg, ClientCPU: perReq(after.client-before.client, res.n),
	}
	r.OpsPerSec = r.TPS * float64(opsPerMsg)
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
		// Gone, or its pid reused: no number rather than a wrong one.
		if a, ok := after.procs[name]; ok && a.start == b.start && a.cpu >= b.cpu && res.n > 0 {
			if r.ProcCPU == nil {
				r.ProcCPU = map[string]float64{}
			}
			r.ProcCPU[name] = perReq(a.cpu-b.cpu, res.n)
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

// summarize takes the median of the runs of target at batch size batch (0
// but for Op Batch), metric by metric.
func summarize(runs []Run, target string, batch int) Summary {
	var s Summary
	var tps, ops, p50, p90, p99, p999, mx, mean, srv, cli []float64
	procs := map[string][]float64{}
	for _, r := range runs {
		if r.Target != target || r.Batch != batch {
			continue
		}
		s.Runs++
		tps = append(tps, r.TPS)
		ops = append(ops, r.OpsPerSec)
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
	s.OpsPerSec = median(ops)
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
	err := parallel(ctx, n, conc, func(i int) error {
		reply, err := t.Do(ctx, wire.RouteWrite, work.seedBody(i))
		if err == nil {
			keys[i], err = intKey(reply.Key)
		}
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		return nil
	})
	return keys, err
}

// seedBatches sends the batch messages of creates of bodies with conc
// clients and passes each reply's items, every one a success, to made
// with the index of their message; made's error stops the seeding.
func seedBatches(ctx context.Context, t Target, bodies [][]byte, conc int, made func(i int, items []wire.Reply) error) error {
	return parallel(ctx, len(bodies), conc, func(i int) error {
		reply, err := t.Do(ctx, wire.RouteWrite, bodies[i])
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		if len(reply.Items) == 0 {
			return fmt.Errorf("batch %d: the reply has no items (does the node serve batch?)", i)
		}
		for j, it := range reply.Items {
			if it.Error != nil {
				return fmt.Errorf("batch %d, item %d: %w", i, j, it.Error)
			}
		}
		if err := made(i, reply.Items); err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		return nil
	})
}

// seedDeletes creates n records for one target's deletes through t, in
// batches (Workload.deleteSeedBodies, emails under the run's prefix and
// tag) sent by conc clients, and returns their keys in creation order.
func seedDeletes(ctx context.Context, t Target, work *Workload, tag string, n, conc int) ([]int64, error) {
	keys := make([]int64, n)
	err := seedBatches(ctx, t, work.deleteSeedBodies(tag, n), conc, func(i int, items []wire.Reply) error {
		first := i * seedBatch
		if want := min(seedBatch, n-first); len(items) != want {
			return fmt.Errorf("%d items answer %d creates", len(items), want)
		}
		for j := range items {
			k, err := intKey(items[j].Key)
			if err != nil {
				return fmt.Errorf("item %d: %w", j, err)
			}
			keys[first+j] = k
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (delete needs a node serving batch)", err)
	}
	return keys, nil
}

// parallel calls do for 0..n-1 from conc goroutines and returns the first
// error, after which no further call starts.
func parallel(ctx context.Context, n, conc int, do func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range max(conc, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
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
// what it did: a page of keys at a time, at most 500, so each delete stays
// within the node's max_affected and max_in_list.
func cleanup(t Target, work *Workload, prefix string, pr *progress) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	var removed int64
	for {
		page, err := t.Do(ctx, wire.RouteRead, work.cleanupPage(prefix, 500))
		if err == nil && len(page.Rows) > 0 {
			keys := make([]any, len(page.Rows))
			for i, row := range page.Rows {
				keys[i] = row["id"]
			}
			var reply *wire.Reply
			if reply, err = t.Do(ctx, wire.RouteWrite, work.cleanupBody(keys)); err == nil {
				removed += reply.Affected
				continue
			}
		}
		if err != nil {
			msg := fmt.Sprintf("cleanup of %s* failed after %d removed: %v", prefix, removed, err)
			fmt.Fprintln(os.Stderr, "bench:", msg)
			return msg
		}
		break
	}
	if removed == 0 {
		return "nothing to remove"
	}
	msg := fmt.Sprintf("removed %d records under %s in %s", removed, prefix, time.Since(t0).Round(time.Millisecond))
	pr.note("%s", msg)
	return msg
}

// cleanupChildren deletes the children of the seeded records and says
// what it did. One delete covers as many records as keep it within the
// node's default max_affected and max_in_list (1000); a node with lower
// limits answers too_large, and the delete is retried for fewer records.
func cleanupChildren(t Target, work *Workload, pr *progress) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	keys := work.Keys
	per := max(1000/max(work.Children, 1), 1)
	var removed int64
	for len(keys) > 0 {
		n := min(per, len(keys))
		reply, err := t.Do(ctx, wire.RouteWrite, work.childCleanupBody(keys[:n]))
		var we *wire.Error
		switch {
		case errors.As(err, &we) && we.Code == wire.CodeTooLarge && n > 1:
			per = n / 2
			continue
		case errors.As(err, &we) && we.Code == wire.CodeNotFound:
		case err != nil:
			msg := fmt.Sprintf("cleanup of %s failed after %d removed: %v", ChildTemplate, removed, err)
			fmt.Fprintln(os.Stderr, "bench:", msg)
			return msg
		default:
			removed += reply.Affected
		}
		keys = keys[n:]
	}
	msg := fmt.Sprintf("removed %d %s records in %s", removed, ChildTemplate, time.Since(t0).Round(time.Millisecond))
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

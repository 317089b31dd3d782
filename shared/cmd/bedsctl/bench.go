package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/beds-project/beds/shared/bench"
	"github.com/beds-project/beds/shared/procstat"
)

const benchUsage = `usage: bedsctl bench [flags]

Loads the cluster with --clients concurrent clients, each sending one
request at a time, for --duration (or --requests in all), after --warmup;
then prints tp/s, latency p50/p90/p99/p99.9/max and errors by code.
--rate paces the requests at that many per second in all (a steady load
for a soak, below what the machine takes) instead of back to back.
Reads and updates use records it seeds first (emails under a run ID), and
it removes every record it wrote at the end unless --keep.

--baseline runs the same load against a minimal raw amqp091-go RPC server
(a child process of bedsctl) that runs the same SQL directly on --dsn, on
the same RabbitMQ, alternating with BEDS (--rounds each, medians reported),
and prints BEDS/baseline ratios. --node-metrics gives the node's CPU per
request, next to the baseline server's; --server-pid rabbitmq=PID (and
mariadb=PID, ...) adds a column of that process's CPU per request, per
round and median, and its BEDS/baseline ratio.

--op batch sends --batch point reads per message, --op include a point
read with its orders (--children seeded per record; needs the orders
template and REL user_orders). Both report database operations per second
(a batch of N reads counts N, an include 2) next to messages per second,
against the baseline's one-operation point read. --batch 1,4,16,64 runs
each size in turn against the same records and baseline runs.

--session sends every measured request with the stored session, so
the node enforces the template's [access] rules for its user; --against T
compares those runs with the same load reading template T (a copy without
[access]) without a session, on the same node, alternating, instead of
with the baseline.

--op delete deletes one record by key per request. A deleted record is
gone, so it first seeds --delete-seed records for BEDS and as many for the
baseline (through the node, in batches of 50 creates), and every delete,
warmups included, takes a key of its own target's records, each once. The
default covers every round's --requests, or --duration and --warmup at
%d deletes/s; a run that deletes them all stops, and the bench fails
asking for a larger --delete-seed. What is left is removed at the end.

Examples:
  bedsctl bench --op point-read --clients 64 --duration 10s --baseline \
      --node-metrics http://127.0.0.1:8080/metrics \
      --server-pid rabbitmq=$(rabbitmqctl -q eval 'os:getpid().' | tr -d '"')
  bedsctl bench --op batch --batch 1,4,16,64 --baseline ...
  bedsctl bench --op delete --requests 20000 --baseline \
      --baseline-durable --baseline-confirm ...
  bedsctl login member && bedsctl bench --op point-read --session \
      --against users_open ...

flags:
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// procFlag is --server-pid, a repeatable NAME=PID: a process on this
// machine whose CPU per request the bench reports under NAME. Set reads
// the process once, so a pid that cannot be read fails the parse.
type procFlag map[string]int

func (p procFlag) String() string { return fmt.Sprint(map[string]int(p)) }
func (p procFlag) Set(s string) error {
	name, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q: want NAME=PID, e.g. rabbitmq=2961", s)
	}
	if !validProcName(name) {
		return fmt.Errorf("name %q: want letters, digits, '.', '_' or '-', starting with a letter (it heads a column)", name)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("name %q given twice", name)
	}
	pid, err := strconv.Atoi(v)
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s: pid %q is not a process id", name, v)
	}
	if _, _, err := procstat.CPU(pid); err != nil {
		return fmt.Errorf("%s: pid %d: cannot read its CPU time: %v", name, pid, err)
	}
	p[name] = pid
	return nil
}

// validProcName reports whether name can head a column: a letter, then
// letters, digits, '.', '_' or '-'.
func validProcName(name string) bool {
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return name != ""
}

func defaultDSN() string {
	if d := os.Getenv("BEDS_MARIADB_DSN"); d != "" {
		return d
	}
	return "root@tcp(127.0.0.1:3306)/beds"
}

// benchFlags is what bedsctl bench was asked.
type benchFlags struct {
	cfg  bench.Config
	json bool
}

// parseBench parses bench's flags into a bench.Config.
func parseBench(args []string, stderr io.Writer) (*benchFlags, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, benchUsage, bench.DeleteRate)
		fs.PrintDefaults()
	}
	var bf benchFlags
	c := &bf.cfg
	var nodes listFlag
	procs := procFlag{}
	fs.StringVar(&c.URL, "url", defaultURL(), "AMQP URL of the cluster")
	fs.IntVar(&c.Clients, "clients", 64, "concurrent clients, each with one request in flight")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "length of each measured run")
	fs.Int64Var(&c.Requests, "requests", 0, "requests per measured run instead of --duration")
	fs.Float64Var(&c.Rate, "rate", 0, "requests per second across all clients, warmups too (a steady load, e.g. a soak); 0: as fast as replies come")
	op := fs.String("op", string(bench.PointRead), "point-read | filtered-read | create | update | delete | mixed | batch | include")
	batch := fs.String("batch", "16", "point reads per message of --op batch; a list (1,4,16,64) runs each size in turn")
	fs.BoolVar(&c.Record, "record", false, "ask the node to record every request's lineage (what recording reads costs)")
	fs.IntVar(&c.Children, "children", 4, fmt.Sprintf("orders seeded per record for --op include, 1..%d", bench.MaxChildren))
	mix := fs.String("mix", "read=80,create=10,update=10", "weights of --op mixed: read, filtered, create, update")
	fs.IntVar(&c.Payload, "payload", 100, "bytes of the string field creates and updates write (name; prefs above 200)")
	fs.StringVar(&c.Template, "template", "users", "template to load, shaped like users (id, email, name, age, active, prefs)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured load before every measured run")
	fs.IntVar(&c.Seed, "seed", 1000, "records to seed for reads and updates")
	fs.IntVar(&c.DeleteSeed, "delete-seed", 0, fmt.Sprintf("records --op delete seeds per target, each deleted once (default: rounds × (--requests, or --duration at %d/s, plus --warmup at %d/s))", bench.DeleteRate, bench.DeleteRate))
	fs.BoolVar(&c.Keep, "keep", false, "leave the seeded and created records in place")
	fs.IntVar(&c.Rounds, "rounds", 0, "measured runs per target (default 1, or 3 with --baseline)")
	fs.IntVar(&c.Channels, "channels", 4, "AMQP channels per client connection")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "per request")
	fs.Var(&nodes, "node-metrics", "a node's /metrics URL, for its CPU per request (repeatable)")
	fs.Var(procs, "server-pid", "NAME=PID of a process on this machine (RabbitMQ's, the database's) whose CPU per request to report in a column NAME µs/req, read from /proc around every measured run (repeatable)")
	session := fs.Bool("session", false, "the measured requests carry the stored session (bedsctl login's: $BEDS_SESSION or the session file), so the node enforces [access] for its user")
	fs.StringVar(&c.Against, "against", "", "compare with the same load reading this template without a session, on the same node, instead of --baseline")
	baseline := fs.Bool("baseline", false, "also run the raw baseline server, alternating with BEDS")
	b := bench.BaselineConfig{}
	fs.StringVar(&b.DSN, "dsn", defaultDSN(), "the baseline's database: the node's (BEDS_MARIADB_DSN)")
	fs.IntVar(&b.Workers, "baseline-workers", 16, "baseline worker goroutines (the dispatcher's instances)")
	fs.IntVar(&b.Prefetch, "baseline-prefetch", 64, "baseline prefetch (the dispatcher's)")
	fs.IntVar(&b.MaxConns, "baseline-conns", 16, "baseline database connections (the adapter's)")
	fs.StringVar(&b.Stmt, "baseline-stmt", bench.StmtPrepared, "baseline statements: prepared | interpolate | plain")
	fs.BoolVar(&b.Durable, "baseline-durable", false, "declare the baseline queue durable, as beds.events is")
	fs.BoolVar(&b.Confirm, "baseline-confirm", false, "baseline waits for RabbitMQ to confirm write replies before acking, as the dispatcher does")
	fs.BoolVar(&bf.json, "json", false, "print the report as JSON, without the progress bar")
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, fmt.Errorf("unexpected argument %q", pos[0])
	}
	if c.Op, err = bench.ParseOp(*op); err != nil {
		return nil, err
	}
	if c.Op == bench.Mixed {
		if c.Mix, err = bench.ParseMix(*mix); err != nil {
			return nil, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case c.Op == bench.Batch:
		if c.Batch, err = bench.ParseBatchSizes(*batch); err != nil {
			return nil, fmt.Errorf("--batch: %w", err)
		}
	case set["batch"]:
		return nil, fmt.Errorf("--batch applies to --op batch, not %s", c.Op)
	}
	switch {
	case c.Op == bench.Include:
		if c.Children < 1 || c.Children > bench.MaxChildren {
			return nil, fmt.Errorf("--children must be 1..%d", bench.MaxChildren)
		}
	case set["children"]:
		return nil, fmt.Errorf("--children applies to --op include, not %s", c.Op)
	default:
		c.Children = 0
	}
	switch {
	case set["delete-seed"] && c.Op != bench.Delete:
		return nil, fmt.Errorf("--delete-seed applies to --op delete, not %s", c.Op)
	case c.DeleteSeed < 0:
		return nil, errors.New("--delete-seed must not be negative (0: derived from the run)")
	}
	switch {
	case c.Clients < 1:
		return nil, errors.New("--clients must be at least 1")
	case c.Requests < 0 || c.Duration <= 0 && c.Requests == 0:
		return nil, errors.New("--duration must be positive, or --requests given")
	case c.Payload < 0 || c.Payload > 1<<20:
		return nil, errors.New("--payload must be 0..1048576 bytes")
	case c.Warmup < 0:
		return nil, errors.New("--warmup must not be negative")
	case c.Rounds < 0:
		return nil, errors.New("--rounds must not be negative")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return nil, errors.New("--rate must be requests per second, or 0 for unpaced")
	}
	if *baseline {
		switch b.Stmt {
		case bench.StmtPrepared, bench.StmtInterpolate, bench.StmtPlain:
		default:
			return nil, fmt.Errorf("--baseline-stmt %q: prepared, interpolate or plain", b.Stmt)
		}
		c.Baseline = &b
	}
	if *session {
		s, err := loadSession(io.Discard)
		if err != nil {
			return nil, fmt.Errorf("--session: %w", err)
		}
		if s.token == "" {
			return nil, errors.New("--session: no stored session: run bedsctl login first (or set BEDS_SESSION)")
		}
		c.Session = s.token
	}
	c.NodeMetrics = nodes
	if len(procs) > 0 {
		c.Procs = procs
	}
	return &bf, nil
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve-baseline" {
		return cmdServeBaseline(ctx, args[1:], stdout, stderr)
	}
	bf, err := parseBench(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl bench:", err)
		return 2
	}
	cfg := bf.cfg
	if !bf.json {
		cfg.Progress = stderr
	}
	if cfg.Baseline != nil {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "bedsctl bench:", err)
			return 1
		}
		cfg.StartBaseline = bench.SpawnBaseline(exe, "bench", "serve-baseline")
	}
	rep, err := bench.Bench(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl bench:", err)
		return 1
	}
	if bf.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.WriteText(stdout)
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// cmdServeBaseline is the baseline server bench --baseline starts as its
// child; it prints "ready" once it consumes and stops on SIGTERM.
func cmdServeBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench serve-baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c bench.BaselineConfig
	fs.StringVar(&c.URL, "url", defaultURL(), "AMQP URL")
	fs.StringVar(&c.DSN, "dsn", defaultDSN(), "MariaDB DSN")
	fs.StringVar(&c.Queue, "queue", "beds.bench.baseline", "queue to declare and consume")
	fs.IntVar(&c.Workers, "workers", 16, "worker goroutines")
	fs.IntVar(&c.Prefetch, "prefetch", 64, "prefetch")
	fs.IntVar(&c.MaxConns, "conns", 16, "database connections")
	fs.StringVar(&c.Stmt, "stmt", bench.StmtPrepared, "prepared | interpolate | plain")
	fs.BoolVar(&c.Durable, "durable", false, "declare the queue durable")
	fs.BoolVar(&c.Confirm, "confirm", false, "confirm write replies before acking")
	if _, err := parse(fs, args); err != nil {
		return 2
	}
	err := bench.ServeBaseline(ctx, c, func() { fmt.Fprintln(stdout, "ready") })
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "bedsctl bench serve-baseline:", err)
		return 1
	}
	return 0
}

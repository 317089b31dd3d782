package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/bench"
	"github.com/beds-project/beds/shared/crud"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/ipl/ipltest"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// TestMain lets the test binary stand in for bedsctl when bench --baseline
// starts its baseline server as a child process (os.Executable).
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "bench" && os.Args[2] == "serve-baseline" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestParseBench(t *testing.T) {
	t.Setenv("BEDS_AMQP_URL", "amqp://u:p@h:5672/v")
	t.Setenv("BEDS_MARIADB_DSN", "me@tcp(db:3306)/x")
	bf, err := parseBench(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := bf.cfg
	if c.URL != "amqp://u:p@h:5672/v" || c.Clients != 64 || c.Duration != 10*time.Second || c.Op != bench.PointRead ||
		c.Template != "users" || c.Baseline != nil || bf.json || c.Requests != 0 || c.Warmup != 2*time.Second {
		t.Errorf("defaults: %+v", c)
	}

	bf, err = parseBench([]string{"--op", "mixed", "--mix", "read=8,create=2", "--clients=3", "--requests", "500",
		"--baseline", "--baseline-stmt", "interpolate", "--json", "--keep",
		"--node-metrics", "http://a/metrics", "--node-metrics", "http://b/metrics", "--proc", "rabbitmq=12"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c = bf.cfg
	if c.Op != bench.Mixed || c.Mix[bench.PointRead] != 8 || c.Mix[bench.Create] != 2 || c.Clients != 3 || c.Requests != 500 ||
		!bf.json || !c.Keep || len(c.NodeMetrics) != 2 || c.NodeMetrics[1] != "http://b/metrics" || c.Procs["rabbitmq"] != 12 {
		t.Errorf("parsed: %+v", c)
	}
	if c.Baseline == nil || c.Baseline.DSN != "me@tcp(db:3306)/x" || c.Baseline.Stmt != bench.StmtInterpolate || c.Baseline.Workers != 16 {
		t.Errorf("baseline: %+v", c.Baseline)
	}

	for _, bad := range [][]string{
		{"--op", "delete"},
		{"--op", "mixed", "--mix", "read=0"},
		{"--clients", "0"},
		{"--duration", "0s"},
		{"--payload", "-1"},
		{"--proc", "rabbitmq"},
		{"--baseline", "--baseline-stmt", "fast"},
		{"extra"},
		{"--nope"},
	} {
		if _, err := parseBench(bad, io.Discard); err == nil {
			t.Errorf("parseBench(%v) accepted", bad)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"bench", "--clients", "0"}, &out, &errOut); code != 2 {
		t.Errorf("bad flags exit %d, want 2: %s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"bench", "-h"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "--baseline") {
		t.Errorf("bench -h exit %d: %s", code, errOut.String())
	}
}

// appserver is the appserver role as services/appserver/main.go wires it.
var appserver = ipl.Role{Name: "appserver", Services: func(rt *ipl.Runtime) ([]ipl.Service, error) {
	cfg := rt.Config
	limits := store.Limits{
		DefaultLimit: cfg.Limits.DefaultLimit, MaxLimit: cfg.Limits.MaxLimit,
		MaxInList: cfg.Limits.MaxInList, MaxDepth: store.DefaultLimits.MaxDepth, MaxSort: store.DefaultLimits.MaxSort,
	}
	retry := crud.Retry{Attempts: cfg.Retry.Attempts, Backoff: cfg.Retry.Backoff.D()}
	h, err := crud.New(rt.Templates, rt.Stores, limits, retry)
	if err != nil {
		return nil, err
	}
	bc := cfg.Brokers["dispatcher"]
	d := dispatch.NewBroker(dispatch.Config{
		Name: "dispatcher", Node: cfg.Node.Name, Queue: wire.EventsQueue,
		Dial: ipl.DialConfig(rt, "dispatcher"), Topology: rt.Topology(),
		Instances: bc.Instances, Prefetch: bc.Prefetch,
		MaxBody: cfg.Limits.MaxBody, Timeout: cfg.Limits.RequestTimeout.D(), Observer: ipl.NewMetrics(rt.Metrics),
	}, h, rt.Log)
	return []ipl.Service{d}, nil
}}

// TestBenchEndToEnd runs bench --baseline for about two seconds against an
// appserver in this process and the baseline server as a child process,
// then a short text-mode run by request count, and checks both measured
// requests without errors and left no records behind.
func TestBenchEndToEnd(t *testing.T) {
	amqpURL, dsn := testenv.AMQP(t), testenv.MariaDB(t)
	root := testenv.Root(t)
	tpl := t.TempDir()
	src, err := os.ReadFile(filepath.Join(root, "templates", "users_rec.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tpl, "users_rec.toml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	n := ipltest.Start(t, appserver, map[string]string{
		"BEDS_CONFIG_DIR": filepath.Join(root, "deploy", "config"), "BEDS_TEMPLATE_DIR": tpl,
		"BEDS_AMQP_URL": amqpURL, "BEDS_MARIADB_DSN": dsn, "BEDS_HTTP_ADDR": "127.0.0.1:0",
		"BEDS_LOG_LEVEL": "warn", "BEDS_NODE_NAME": "bench-test",
	})
	metrics := "http://" + n.Addr() + "/metrics"
	ctx := context.Background()

	var out, errOut bytes.Buffer
	code := run(ctx, []string{"bench", "--url", amqpURL, "--dsn", dsn, "--baseline", "--rounds", "1",
		"--op", "mixed", "--mix", "read=6,filtered=1,create=2,update=1", "--clients", "8",
		"--duration", "800ms", "--warmup", "200ms", "--seed", "50", "--node-metrics", metrics, "--json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("bench exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if rep.Base == nil || rep.Ratio == nil || len(rep.Runs) != 2 {
		t.Fatalf("no baseline in the report: %s", out.String())
	}
	for _, s := range []struct {
		name string
		s    bench.Summary
	}{{"beds", rep.BEDS}, {"baseline", *rep.Base}} {
		if s.s.TPS <= 0 || s.s.Latency.P50 <= 0 || s.s.Latency.Max < s.s.Latency.P99 || len(s.s.Errors) != 0 {
			t.Errorf("%s: %+v", s.name, s.s)
		}
		if s.s.ServerCPU <= 0 {
			t.Errorf("%s: no server CPU per request", s.name)
		}
	}
	if rep.Seeded != 50 || rep.Ratio.TPS <= 0 || !strings.Contains(rep.Cleanup, "removed 50 records") {
		t.Errorf("seeded %d, ratio %+v, cleanup %q", rep.Seeded, rep.Ratio, rep.Cleanup)
	}
	if errOut.Len() > 0 && strings.Contains(errOut.String(), "[") {
		t.Errorf("--json drew a progress bar: %s", errOut.String())
	}

	out.Reset()
	errOut.Reset()
	code = run(ctx, []string{"bench", "--url", amqpURL, "--op", "point-read", "--clients", "4",
		"--requests", "200", "--warmup", "0s", "--seed", "20"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "beds (median)") || !strings.Contains(out.String(), "errors: beds none") {
		t.Fatalf("text run exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "beds 1") {
		t.Errorf("no progress on stderr: %s", errOut.String())
	}

	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left int
	if err := db.QueryRow("SELECT COUNT(*) FROM tbl_usr WHERE usr_email LIKE 'bench-%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d bench records left behind (%v)", left, err)
	}
}

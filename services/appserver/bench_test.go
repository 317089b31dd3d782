package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/bench"
	"github.com/beds-project/beds/shared/testenv"
)

// TestBenchEndToEnd runs bedsctl bench --baseline for about two seconds
// against an appserver in this process (the role main runs) and the
// baseline server bedsctl starts as its child, then short runs by request
// count (text mode, batch, include, delete with its baseline, and a delete
// run short of records), and checks each measured requests without errors
// (the last fails as it should) and left no records behind.
func TestBenchEndToEnd(t *testing.T) {
	amqpURL, dsn := testenv.AMQP(t), testenv.MariaDB(t)
	root := testenv.Root(t)
	tpl := t.TempDir()
	for _, f := range []string{"users_rec.toml", "orders_rec.toml", "user_orders_rel.toml"} {
		must(t, os.WriteFile(filepath.Join(tpl, f), []byte(testenv.TemplateFile(t, f)), 0o644))
	}
	n := startNode(t, map[string]string{
		"BEDS_CONFIG_DIR": filepath.Join(root, "deploy", "config"), "BEDS_TEMPLATE_DIR": tpl,
		"BEDS_AMQP_URL": amqpURL, "BEDS_MARIADB_DSN": dsn, "BEDS_HTTP_ADDR": "127.0.0.1:0",
		"BEDS_LOG_LEVEL": "warn", "BEDS_NODE_NAME": "bench-test",
	})
	metrics := "http://" + n.Addr() + "/metrics"
	bin := buildBedsctl(t)
	run := func(args ...string) (stdout, stderr string, code int) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		_ = cmd.Run()
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}

	out, errOut, code := run("bench", "--url", amqpURL, "--dsn", dsn, "--baseline", "--rounds", "1",
		"--op", "mixed", "--mix", "read=6,filtered=1,create=2,update=1", "--clients", "8",
		"--duration", "800ms", "--warmup", "200ms", "--seed", "50", "--node-metrics", metrics, "--json")
	if code != 0 {
		t.Fatalf("bench exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if rep.Base == nil || rep.Ratio == nil || len(rep.Runs) != 2 {
		t.Fatalf("no baseline in the report: %s", out)
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
	if errOut != "" && strings.Contains(errOut, "[") {
		t.Errorf("--json drew a progress bar: %s", errOut)
	}

	out, errOut, code = run("bench", "--url", amqpURL, "--op", "point-read", "--clients", "4",
		"--requests", "200", "--warmup", "0s", "--seed", "20")
	if code != 0 || !strings.Contains(out, "beds (median)") || !strings.Contains(out, "errors: beds none") {
		t.Fatalf("text run exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "beds 1") {
		t.Errorf("no progress on stderr: %s", errOut)
	}

	// Many operations per message: two batch sizes in one run, counted
	// in operations; an include read with its children.
	out, errOut, code = run("bench", "--url", amqpURL, "--op", "batch", "--batch", "1,4", "--clients", "4",
		"--requests", "100", "--warmup", "0s", "--seed", "20", "--record", "--json")
	if code != 0 {
		t.Fatalf("batch run exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	rep = bench.Report{}
	must(t, json.Unmarshal([]byte(out), &rep))
	if len(rep.Sizes) != 2 || rep.Sizes[1].Batch != 4 || len(rep.Sizes[1].BEDS.Errors) != 0 ||
		rep.Sizes[1].BEDS.OpsPerSec < 3.5*rep.Sizes[1].BEDS.TPS || !rep.Record {
		t.Errorf("batch report: %s", out)
	}
	out, errOut, code = run("bench", "--url", amqpURL, "--op", "include", "--children", "3", "--clients", "4",
		"--requests", "100", "--warmup", "0s", "--seed", "20")
	if code != 0 || !strings.Contains(out, "errors: beds none") || !strings.Contains(out, "removed 60 orders records") {
		t.Fatalf("include run exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// Deletes: each target deletes records seeded for it, each once; the
	// warmup's share left over is removed at the end. A pool too small
	// for the run stops it with an error rather than measure not_found.
	out, errOut, code = run("bench", "--url", amqpURL, "--dsn", dsn, "--baseline", "--rounds", "1",
		"--op", "delete", "--clients", "4", "--requests", "100", "--warmup", "100ms", "--json")
	if code != 0 {
		t.Fatalf("delete run exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	rep = bench.Report{}
	must(t, json.Unmarshal([]byte(out), &rep))
	if want := 100 + bench.DeleteRate/10; rep.DeleteSeed != want || rep.Seeded != 0 {
		t.Errorf("delete seed %d, seeded %d; want %d, 0", rep.DeleteSeed, rep.Seeded, want)
	}
	if rep.Base == nil || len(rep.Runs) != 2 {
		t.Fatalf("no baseline in the delete report: %s", out)
	}
	for _, r := range rep.Runs {
		if r.Requests != 100 || len(r.Errors) != 0 || r.TPS <= 0 || r.OpsPerMsg != 1 {
			t.Errorf("delete run %s: %d requests, errors %v, %.0f tp/s, %d ops/msg", r.Target, r.Requests, r.Errors, r.TPS, r.OpsPerMsg)
		}
	}
	if !strings.Contains(rep.Cleanup, "removed") {
		t.Errorf("delete cleanup: %q", rep.Cleanup)
	}
	out, errOut, code = run("bench", "--url", amqpURL, "--op", "delete", "--clients", "4", "--requests", "100",
		"--delete-seed", "60", "--warmup", "0s")
	if code != 1 || !strings.Contains(errOut, "--delete-seed") || !strings.Contains(errOut, "all 60 seeded for beds") {
		t.Fatalf("delete run of 100 on 60 records: exit %d, want 1 asking for --delete-seed\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	db, err := sql.Open("mysql", dsn)
	must(t, err)
	defer db.Close()
	var left int
	if err := db.QueryRow("SELECT COUNT(*) FROM tbl_usr WHERE usr_email LIKE 'bench-%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d bench records left behind (%v)", left, err)
	}
}

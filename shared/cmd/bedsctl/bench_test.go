package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/bench"
)

func TestParseBench(t *testing.T) {
	t.Setenv("BEDS_AMQP_URL", "amqp://u:p@h:5672/v")
	t.Setenv("BEDS_MARIADB_DSN", "me@tcp(db:3306)/x")
	bf, err := parseBench(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := bf.cfg
	if c.URL != "amqp://u:p@h:5672/v" || c.Clients != 64 || c.Duration != 10*time.Second || c.Op != bench.PointRead ||
		c.Template != "users" || c.Baseline != nil || bf.json || c.Requests != 0 || c.Warmup != 2*time.Second || c.Rate != 0 {
		t.Errorf("defaults: %+v", c)
	}

	bf, err = parseBench([]string{"--op", "mixed", "--mix", "read=8,create=2", "--clients=3", "--requests", "500",
		"--baseline", "--baseline-stmt", "interpolate", "--json", "--keep",
		"--node-metrics", "http://a/metrics", "--node-metrics", "http://b/metrics", "--server-pid", fmt.Sprintf("self=%d", os.Getpid()), "--rate", "250.5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c = bf.cfg
	if c.Op != bench.Mixed || c.Mix[bench.PointRead] != 8 || c.Mix[bench.Create] != 2 || c.Clients != 3 || c.Requests != 500 ||
		!bf.json || !c.Keep || len(c.NodeMetrics) != 2 || c.NodeMetrics[1] != "http://b/metrics" || c.Procs["self"] != os.Getpid() || c.Rate != 250.5 {
		t.Errorf("parsed: %+v", c)
	}
	if c.Baseline == nil || c.Baseline.DSN != "me@tcp(db:3306)/x" || c.Baseline.Stmt != bench.StmtInterpolate || c.Baseline.Workers != 16 {
		t.Errorf("baseline: %+v", c.Baseline)
	}

	if c.Batch != nil || c.Children != 0 {
		t.Errorf("mixed: batch %v, children %d", c.Batch, c.Children)
	}

	for _, tc := range []struct {
		args     []string
		batch    []int
		children int
	}{
		{[]string{"--op", "batch"}, []int{16}, 0},
		{[]string{"--op", "batch", "--batch", "1,4,16,64"}, []int{1, 4, 16, 64}, 0},
		{[]string{"--op", "batch", "--batch=64"}, []int{64}, 0},
		{[]string{"--op", "include"}, nil, 4},
		{[]string{"--op", "include", "--children", "24"}, nil, 24},
	} {
		bf, err := parseBench(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if !slices.Equal(bf.cfg.Batch, tc.batch) || bf.cfg.Children != tc.children {
			t.Errorf("%v: batch %v children %d, want %v %d", tc.args, bf.cfg.Batch, bf.cfg.Children, tc.batch, tc.children)
		}
	}

	for _, tc := range []struct {
		args []string
		seed int
	}{
		{[]string{"--op", "delete"}, 0},
		{[]string{"--op", "delete", "--delete-seed", "90000"}, 90000},
		{[]string{"--op=delete", "--requests", "100", "--baseline"}, 0},
	} {
		bf, err := parseBench(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if bf.cfg.Op != bench.Delete || bf.cfg.DeleteSeed != tc.seed || bf.cfg.Children != 0 || bf.cfg.Batch != nil {
			t.Errorf("%v: op %s delete seed %d children %d batch %v", tc.args, bf.cfg.Op, bf.cfg.DeleteSeed, bf.cfg.Children, bf.cfg.Batch)
		}
	}

	for _, bad := range [][]string{
		{"--op", "remove"},
		{"--op", "delete", "--delete-seed", "-1"},
		{"--op", "delete", "--delete-seed", "many"},
		{"--op", "update", "--delete-seed", "100"},
		{"--delete-seed", "100"},
		{"--op", "delete", "--children", "2"},
		{"--op", "delete", "--batch", "4"},
		{"--op", "batch", "--batch", "0"},
		{"--op", "batch", "--batch", "1,4,4"},
		{"--op", "batch", "--batch", "10001"},
		{"--op", "point-read", "--batch", "16"},
		{"--op", "include", "--children", "0"},
		{"--op", "include", "--children", "101"},
		{"--op", "batch", "--children", "2"},
		{"--op", "mixed", "--mix", "read=0"},
		{"--clients", "0"},
		{"--duration", "0s"},
		{"--payload", "-1"},
		{"--rate", "-5"},
		{"--rate", "NaN"},
		{"--rate", "fast"},
		{"--baseline", "--baseline-stmt", "fast"},
		{"extra"},
		{"--nope"},
	} {
		if _, err := parseBench(bad, io.Discard); err == nil {
			t.Errorf("parseBench(%v) accepted", bad)
		}
	}
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		args []string
		want map[string]int
		err  string // in the error, when it fails
	}{
		{[]string{"--server-pid", "rabbitmq=" + self}, map[string]int{"rabbitmq": os.Getpid()}, ""},
		{[]string{"--server-pid", "rabbitmq=" + self, "--server-pid", "mariadb-1.x=" + self},
			map[string]int{"rabbitmq": os.Getpid(), "mariadb-1.x": os.Getpid()}, ""},
		{[]string{"--server-pid", "rabbitmq"}, nil, "want NAME=PID"},
		{[]string{"--server-pid", "=" + self}, nil, `name ""`},
		{[]string{"--server-pid", "rabbit mq=" + self}, nil, `name "rabbit mq"`},
		{[]string{"--server-pid", "1rabbit=" + self}, nil, `name "1rabbit"`},
		{[]string{"--server-pid", "a=" + self, "--server-pid", "a=" + self}, nil, "given twice"},
		{[]string{"--server-pid", "rabbitmq=beam"}, nil, `rabbitmq: pid "beam" is not a process id`},
		{[]string{"--server-pid", "rabbitmq=-3"}, nil, `pid "-3"`},
		{[]string{"--server-pid", "rabbitmq=1073741824"}, nil, "rabbitmq: pid 1073741824: cannot read its CPU time: open /proc/1073741824/stat: no such file"},
	} {
		var errOut bytes.Buffer
		bf, err := parseBench(tc.args, &errOut)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.err == "" && !maps.Equal(bf.cfg.Procs, tc.want):
			t.Errorf("%v: procs %v, want %v", tc.args, bf.cfg.Procs, tc.want)
		case tc.err != "" && err == nil:
			t.Errorf("%v accepted: %v", tc.args, bf.cfg.Procs)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("%v: error %q, want it to say %q", tc.args, err, tc.err)
		}
	}
	if bf, err := parseBench(nil, io.Discard); err != nil || bf.cfg.Procs != nil {
		t.Errorf("no --server-pid: procs %v, %v", bf.cfg.Procs, err)
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"bench", "--clients", "0"}, nil, &out, &errOut); code != 2 {
		t.Errorf("bad flags exit %d, want 2: %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"bench", "-h"}, nil, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "--baseline") ||
		!strings.Contains(errOut.String(), "-delete-seed") || !strings.Contains(errOut.String(), fmt.Sprintf("%d deletes/s", bench.DeleteRate)) || strings.Contains(errOut.String(), "%!") {
		t.Errorf("bench -h exit %d: %s", code, errOut.String())
	}
}

package main

import (
	"bytes"
	"context"
	"io"
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
	if code := run(context.Background(), []string{"bench", "--clients", "0"}, nil, &out, &errOut); code != 2 {
		t.Errorf("bad flags exit %d, want 2: %s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"bench", "-h"}, nil, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "--baseline") {
		t.Errorf("bench -h exit %d: %s", code, errOut.String())
	}
}

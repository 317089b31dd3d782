package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/tools/soak/sample"
)

// writeSamples writes 20 minutes of two nodes' samples to a CSV; leak is
// how many goroutines appserver-1 gains per hour.
func writeSamples(t *testing.T, path string, leak float64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := sample.NewWriter(f)
	start := time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)
	for i := range 240 {
		at := time.Duration(i) * 5 * time.Second
		for _, node := range []string{"appserver-1", "admin-1"} {
			s := sample.Sample{Time: start.Add(at), Node: node}
			for k := range s.Values {
				s.Values[k] = 5
			}
			s.Values[sample.RSS] = float64(30<<20 + (i%7)<<18)
			if node == "appserver-1" {
				s.Values[sample.Goroutines] = 40 + math.Floor(leak*at.Hours())
			}
			if err := w.Write(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "samples.csv")
	load := filepath.Join(dir, "bench.txt")
	if err := os.WriteFile(load, []byte("bench: 0 errors\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		leak float64
		args []string
		code int
		out  string
	}{
		{"steady", 0, nil, 0, "soak: pass"},
		{"a goroutine leak", 600, nil, 1, "appserver-1  goroutines       slope"},
		{"the same leak under a looser bound", 600, []string{"--max-goroutines-per-h", "1000"}, 0, "soak: pass"},
		{"the leak inside the warm-up only", 600, []string{"--warmup", "25m"}, 1, "0 samples after the warm-up"},
	} {
		writeSamples(t, in, tc.leak)
		md, svg := filepath.Join(dir, "out", "report.md"), filepath.Join(dir, "out", "plot", "soak.svg")
		if err := os.MkdirAll(filepath.Dir(svg), 0o755); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr strings.Builder
		args := append([]string{"report", "--in", in, "--md", md, "--plot", svg, "--load", load, "--command", "scripts/soak.sh 20m"}, tc.args...)
		if code := run(context.Background(), args, &stdout, &stderr); code != tc.code || !strings.Contains(stdout.String(), tc.out) {
			t.Errorf("%s: exit %d (want %d), stdout:\n%s\nstderr: %s", tc.name, code, tc.code, stdout.String(), stderr.String())
		}
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Command: `scripts/soak.sh 20m`", "](plot/soak.svg)", "bench: 0 errors"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: report lacks %q", tc.name, want)
			}
		}
		if st, err := os.Stat(svg); err != nil || st.Size() < 1000 {
			t.Errorf("%s: plot %v %v", tc.name, st, err)
		}
		os.RemoveAll(filepath.Join(dir, "out"))
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "samples.csv")
	writeSamples(t, in, 0)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"soak"}, 2},
		{[]string{"help"}, 0},
		{[]string{"sample"}, 2},
		{[]string{"sample", "--node", "a=1", "--interval", "0s"}, 2},
		{[]string{"sample", "--node", "a=1", "--node", "a=2"}, 2},
		{[]string{"sample", "--node", "a"}, 2},
		{[]string{"report", "--in", in, "--max-fds-per-h", "-1"}, 2},
		{[]string{"report", "--in", in, "--plot", filepath.Join(dir, "x.gif")}, 2},
		{[]string{"report", "--in", filepath.Join(dir, "none.csv")}, 1},
		{[]string{"report", "--in", in, "extra"}, 2},
	} {
		var out, errOut strings.Builder
		if code := run(context.Background(), tc.args, &out, &errOut); code != tc.code {
			t.Errorf("soak %v: exit %d, want %d: %s%s", tc.args, code, tc.code, out.String(), errOut.String())
		}
	}
}

// TestSampleCommand samples this test's process for a moment.
func TestSampleCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s.csv")
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"sample", "--out", out, "--interval", "10ms", "--duration", "20ms",
		"--node", "self=" + itoa(os.Getpid())}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ss, err := sample.Read(f)
	if err != nil || len(ss) < 1 || ss[0].Node != "self" || math.IsNaN(ss[0].Values[sample.RSS]) {
		t.Errorf("samples %+v, %v", ss, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

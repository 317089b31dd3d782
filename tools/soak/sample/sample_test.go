package sample

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCSVRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 27, 14, 0, 0, 123456789, time.UTC)
	var in []Sample
	for i := range 4 {
		for _, node := range []string{"appserver-1", "admin-1"} {
			s := Sample{Time: start.Add(time.Duration(i) * 5 * time.Second), Node: node}
			for k := range s.Values {
				s.Values[k] = float64(i*1000+k) + 0.5
			}
			in = append(in, s)
		}
	}
	in[3].Values[HeapInuse] = math.NaN()
	in[5].Values[RSS] = 2.5e10
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, s := range in {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "time,node,rss_bytes,heap_inuse_bytes,goroutines,fds,conns_amqp,conns_mariadb,conns_mongo,conns_other\n") {
		t.Errorf("header: %s", b.String())
	}
	out, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d samples read, %d written", len(out), len(in))
	}
	for i := range in {
		if !out[i].Time.Equal(in[i].Time) || out[i].Node != in[i].Node {
			t.Errorf("sample %d: %s %s, want %s %s", i, out[i].Time, out[i].Node, in[i].Time, in[i].Node)
		}
		for k := range in[i].Values {
			a, b := in[i].Values[k], out[i].Values[k]
			if a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
				t.Errorf("sample %d %s: %g, want %g", i, Series(k), b, a)
			}
		}
	}

	// An empty run is a header alone, and reads as no samples.
	b.Reset()
	if err := NewWriter(&b).Flush(); err != nil {
		t.Fatal(err)
	}
	if out, err := Read(&b); err != nil || len(out) != 0 {
		t.Errorf("empty run: %v, %v", out, err)
	}
	for _, bad := range []string{
		"",
		"time,node\n",
		"time,node,rss_bytes,heap_inuse_bytes,goroutines,fds,conns_amqp,conns_mariadb,conns_mongo,conns_other\nyesterday,a,1,2,3,4,5,6,7,8\n",
		"time,node,rss_bytes,heap_inuse_bytes,goroutines,fds,conns_amqp,conns_mariadb,conns_mongo,conns_other\n2026-11-27T14:00:00Z,a,1,x,3,4,5,6,7,8\n",
		"time,node,rss_bytes,heap_inuse_bytes,goroutines,fds,conns_amqp,conns_mariadb,conns_mongo,conns_other\n2026-11-27T14:00:00Z,a,1\n",
	} {
		if _, err := Read(strings.NewReader(bad)); err == nil {
			t.Errorf("Read(%q) accepted", bad)
		}
	}
}

func TestSeriesNames(t *testing.T) {
	for k := range NumSeries {
		got, err := ParseSeries(k.String())
		if err != nil || got != k {
			t.Errorf("ParseSeries(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseSeries("vsz"); err == nil {
		t.Error("ParseSeries(vsz) accepted")
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
		ok   bool
	}{
		{"appserver-1=1234,http://127.0.0.1:18280/metrics", Target{"appserver-1", 1234, "http://127.0.0.1:18280/metrics"}, true},
		{"admin-1=77", Target{"admin-1", 77, ""}, true},
		{"=77", Target{}, false},
		{"a=0", Target{}, false},
		{"a=-3", Target{}, false},
		{"a=x", Target{}, false},
		{"a", Target{}, false},
		{"a,b=1", Target{}, false},
	} {
		got, err := ParseTarget(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+07
go_gc_duration_seconds{quantile="0.5"} 3e-05
beds_requests_total{op="read"} 9
broken
`))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 12345000 || len(m) != 2 {
		t.Errorf("metrics %v", m)
	}
}

func TestTallyConns(t *testing.T) {
	// Two established connections of ours to 5672 (0x1628) and 3306
	// (0x0CEA), one to 27017 (0x6989), one accepted (far port 0xC350);
	// one of someone else's (inode 99) and a listening socket (st 0A).
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B8F0 0100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 11 1 0000000000000000 20 4 30 10 -1
   1: 0100007F:B8F2 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 12 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:B8F4 0100007F:6989 01 00000000:00000000 00:00000000 00000000     0        0 13 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:4772 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 14 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:B8F6 0100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 20 4 30 10 -1
   5: 0100007F:4772 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 15 1 0000000000000000 100 0 0 10 0
   6: 0100007F:B8F8 0100007F:1628 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
`
	var c conns
	mine := map[uint64]bool{11: true, 12: true, 13: true, 14: true, 15: true}
	if err := tallyConns([]byte(table), mine, &c); err != nil {
		t.Fatal(err)
	}
	if c != (conns{amqp: 1, mariadb: 1, mongo: 1, other: 1}) {
		t.Errorf("counted %+v", c)
	}
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:B8F0 0000000000000000FFFF00000100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 21 1 0000000000000000 20 4 30 10 -1
`
	if err := tallyConns([]byte(tcp6), map[uint64]bool{21: true}, &c); err != nil || c.amqp != 2 {
		t.Errorf("tcp6: %+v, %v", c, err)
	}
	if err := tallyConns([]byte("header\n 0: short line\n"), mine, &c); err == nil {
		t.Error("a short line accepted")
	}
}

func TestReadRSS(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		status string
		want   float64
		ok     bool
	}{
		{"Name:\tappserver\nVmPeak:\t  9000 kB\nVmRSS:\t   24576 kB\nThreads:\t9\n", 24576 * 1024, true},
		{"Name:\tzombie\nState:\tZ (zombie)\n", 0, false},
		{"VmRSS:\t12 MB\n", 0, false},
	} {
		p := filepath.Join(dir, "status")
		if err := os.WriteFile(p, []byte(tc.status), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readRSS(p)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("readRSS(%q) = %g, %v", tc.status, got, err)
		}
	}
}

// TestSampleSelf samples this test's own process, with a /metrics server
// of its own and a TCP connection it holds both ends of.
func TestSampleSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sampling reads Linux's /proc")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\ngo_memstats_heap_inuse_bytes 4.5e+06\n", 321)
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	if c, ok := <-accepted; ok {
		defer c.Close()
	}

	var s Sampler
	sm, err := s.Sample(context.Background(), Target{Name: "self", PID: os.Getpid(), Metrics: srv.URL + "/metrics"})
	if err != nil {
		t.Fatal(err)
	}
	v := sm.Values
	if sm.Node != "self" || v[RSS] < 1<<20 || v[FDs] < 3 || v[Goroutines] != 321 || v[HeapInuse] != 4.5e6 {
		t.Errorf("sample %+v", sm)
	}
	// Both ends of the test's connection are ours; the scrape's is not
	// counted (it is made after the connections are read, and not kept).
	if v[ConnsOther] != 2 {
		t.Errorf("%g other connections, want the test's 2: %+v", v[ConnsOther], sm)
	}

	// A process that is gone: every value NaN, and an error naming it.
	sm, err = s.Sample(context.Background(), Target{Name: "gone", PID: 1 << 30})
	if err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("sampling a process that is gone: %v", err)
	}
	for k, x := range sm.Values {
		if !math.IsNaN(x) {
			t.Errorf("gone: %s = %g, want NaN", Series(k), x)
		}
	}
}

// TestRun checks Run samples every target each round and writes them as
// it goes, until its duration.
func TestRun(t *testing.T) {
	var b bytes.Buffer
	var log strings.Builder
	var s Sampler
	targets := []Target{{Name: "self", PID: os.Getpid()}, {Name: "gone", PID: 1 << 30}}
	rounds, err := s.Run(context.Background(), targets, 10*time.Millisecond, 35*time.Millisecond, NewWriter(&b), &log)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if rounds < 1 || len(out) != 2*rounds || out[0].Node != "self" || out[1].Node != "gone" || math.IsNaN(out[0].Values[RSS]) {
		t.Errorf("%d rounds, samples %+v", rounds, out)
	}
	if strings.Count(log.String(), "node gone") != rounds {
		t.Errorf("log: %s", log.String())
	}
	if _, err := s.Run(context.Background(), targets, 0, time.Second, NewWriter(&b), nil); err == nil {
		t.Error("interval 0 accepted")
	}
}

package chart

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/beds-project/beds/tools/soak/growth"
	"github.com/beds-project/beds/tools/soak/sample"
)

func samples() []sample.Sample {
	start := time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)
	var out []sample.Sample
	for i := range 60 {
		for n, node := range []string{"appserver-1", "admin-1"} {
			s := sample.Sample{Time: start.Add(time.Duration(i) * 5 * time.Second), Node: node}
			for k := range s.Values {
				s.Values[k] = float64(10*n + k + i%3)
			}
			s.Values[sample.RSS] = float64(20+i) * growth.MiB
			if i == 30 {
				s.Values[sample.HeapInuse] = math.NaN() // a scrape that failed
			}
			out = append(out, s)
		}
	}
	return out
}

// TestWriteFile checks a plot is written in the format its name asks for,
// with the series' titles and a line per node.
func TestWriteFile(t *testing.T) {
	ss := samples()
	r, err := growth.Judge(ss, -1, growth.DefaultBounds())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		magic []byte
		has   [][]byte
	}{
		{"soak.svg", []byte("<?xml"), [][]byte{[]byte("<svg"), []byte("goroutines"), []byte("appserver-1"), []byte("admin-1"), []byte("TCP connections to MariaDB (3306)")}},
		{"soak.png", []byte("\x89PNG\r\n\x1a\n"), nil},
	} {
		path := filepath.Join(dir, tc.name)
		if err := WriteFile(path, ss, r); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, tc.magic) || len(b) < 1000 {
			t.Errorf("%s: %d bytes starting %q", tc.name, len(b), b[:min(len(b), 16)])
		}
		for _, want := range tc.has {
			if !bytes.Contains(b, want) {
				t.Errorf("%s lacks %q", tc.name, want)
			}
		}
	}
	if err := WriteFile(filepath.Join(dir, "soak.gif"), ss, r); err == nil {
		t.Error("a .gif plot accepted")
	}
}

func TestSegments(t *testing.T) {
	ss := samples()
	r, err := growth.Judge(ss, -1, growth.DefaultBounds())
	if err != nil {
		t.Fatal(err)
	}
	segs := segments(ss, "appserver-1", sample.HeapInuse, r, 1)
	if len(segs) != 2 || len(segs[0]) != 30 || len(segs[1]) != 29 {
		t.Fatalf("heap of appserver-1: %d segments", len(segs))
	}
	if segs[1][0].X != 31*5.0/60 {
		t.Errorf("second segment starts at minute %g", segs[1][0].X)
	}
	if segs := segments(ss, "appserver-1", sample.RSS, r, growth.MiB); len(segs) != 1 || segs[0][59].Y != 79 {
		t.Errorf("RSS in MiB: %v", segs)
	}
}

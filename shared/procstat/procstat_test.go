package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	// The command name holds a space and a parenthesis.
	line := "4242 (my (app) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 1234 0 0"
	got, start, err := parse(line)
	if err != nil || got != 3250*time.Millisecond || start != 1234 {
		t.Fatalf("got %v, start %d, %v", got, start, err)
	}
	for _, bad := range []string{"garbage", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 75 0 0 20 0 8 0 1234 0 0"} {
		if _, _, err := parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCPU reads the test process itself: its CPU time grows as it
// burns CPU, and its start time stays.
func TestCPU(t *testing.T) {
	pid := os.Getpid()
	c0, start0, err := CPU(pid)
	if err != nil || c0 < 0 || start0 <= 0 {
		t.Fatalf("own process: %v, start %d, %v", c0, start0, err)
	}
	// /proc counts in clock ticks (10ms): burn until a few have passed.
	deadline := time.Now().Add(10 * time.Second)
	x := 1.0
	for {
		for i := 0; i < 1e6; i++ {
			x = x*1.0000001 + 1e-9
		}
		c1, start1, err := CPU(pid)
		if err != nil || start1 != start0 {
			t.Fatalf("own process again: %v, start %d (was %d), %v", c1, start1, start0, err)
		}
		if c1 >= c0+50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v..%v after 10s of burning (x %g)", c0, c1, x)
		}
	}
	if _, _, err := CPU(1 << 30); err == nil {
		t.Error("a pid no process has was read")
	}
}

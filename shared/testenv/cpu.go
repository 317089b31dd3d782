package testenv

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/procstat"
)

// PIDOf returns the process ID of the first process on this machine named
// one of names (as pgrep -x matches them), or 0 when none runs here.
func PIDOf(names ...string) int {
	for _, name := range names {
		out, err := exec.Command("pgrep", "-x", name).Output()
		if err != nil {
			continue
		}
		if f := strings.Fields(string(out)); len(f) > 0 {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				return pid
			}
		}
	}
	return 0
}

// ProcessCPU returns the CPU time (user and system) process pid has used
// so far, or -1 when pid is 0 or it cannot be read (procstat.CPU reads
// it). Benchmarks call it before and after a run to report a database
// server's CPU per operation next to their own time.
func ProcessCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	cpu, _, err := procstat.CPU(pid)
	if err != nil {
		return -1
	}
	return cpu
}

// BenchParallel runs op b.N times from 16 goroutines per GOMAXPROCS (32
// on two cores, enough to keep a database server busy), failing b on the
// first error, and reports metric: the CPU process pid used per op over
// the run, when it can be read (ProcessCPU).
func BenchParallel(b *testing.B, pid int, metric string, op func(context.Context) error) {
	b.Helper()
	before := ProcessCPU(pid)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if after := ProcessCPU(pid); before >= 0 && after >= 0 {
		b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), metric)
	}
}

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU is a process's CPU time (user + system), however it was read.
type CPU = time.Duration

// NodeCPU reads process_cpu_seconds_total from a node's /metrics (the
// Prometheus process collector every node registers).
func NodeCPU(ctx context.Context, url string) (CPU, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseCPUMetric(resp.Body)
}

// parseCPUMetric finds process_cpu_seconds_total in Prometheus text format.
func parseCPUMetric(r io.Reader) (CPU, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "process_cpu_seconds_total")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.IndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		s, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("process_cpu_seconds_total: %w", err)
		}
		return CPU(s * float64(time.Second)), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no process_cpu_seconds_total in the metrics (is this a BEDS node's /metrics?)")
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux platform Go supports.
const clockTick = 100

// ProcCPU reads the CPU time (utime + stime) of process pid on this
// machine from /proc/<pid>/stat, and the process's start time (clock
// ticks after boot), which tells it apart from a later process given the
// same pid: two readings of one process have the same start. It fails
// when the process does not exist or its stat cannot be read (another
// user's process under hidepid, say).
func ProcCPU(pid int) (cpu CPU, start int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime + stime (fields 14 and 15) and starttime
// (field 22) from a stat line; the command name (field 2) may hold
// spaces and parentheses, so count after its last ')'.
func parseProcStat(s string) (CPU, int64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unexpected /proc stat line")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("short /proc stat line")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	start, err3 := strconv.ParseInt(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, fmt.Errorf("bad /proc stat times %q %q %q", f[11], f[12], f[19])
	}
	return CPU((ut + st) * int64(time.Second) / clockTick), start, nil
}

// SelfCPU returns this process's CPU time (the load generator's).
func SelfCPU() CPU {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return CPU(ru.Utime.Nano() + ru.Stime.Nano())
}

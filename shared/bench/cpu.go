package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
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

// SelfCPU returns this process's CPU time (the load generator's).
func SelfCPU() CPU {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return CPU(ru.Utime.Nano() + ru.Stime.Nano())
}

package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ServerCPU returns the CPU time (user and system) used so far by the
// first process found on this machine under one of names (as pgrep -x
// matches them), or -1 when none runs here or its /proc entry cannot be
// read. Benchmarks call it before and after a run to report a database
// server's CPU per operation next to their own time.
func ServerCPU(names ...string) time.Duration {
	for _, name := range names {
		out, err := exec.Command("pgrep", "-x", name).Output()
		if err != nil {
			continue
		}
		pid := strings.Fields(string(out))
		if len(pid) == 0 {
			continue
		}
		stat, err := os.ReadFile("/proc/" + pid[0] + "/stat")
		if err != nil {
			return -1
		}
		// utime and stime are fields 14 and 15, counted after the command
		// name in parentheses (which may hold spaces).
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			return -1
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		s, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return -1
		}
		return time.Duration(u+s) * 10 * time.Millisecond // clock ticks of 1/100 s
	}
	return -1
}

// Package procstat reads a process's CPU time from Linux's /proc, for
// the measurements that report a server's CPU per request next to their
// own: bedsctl bench (--server-pid) and the store benchmarks.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux platform Go supports.
const clockTick = 100

// CPU reads the CPU time (utime + stime) of process pid on this
// machine from /proc/<pid>/stat, and the process's start time (clock
// ticks after boot), which tells it apart from a later process given the
// same pid: two readings of one process have the same start. It fails
// when the process does not exist or its stat cannot be read (another
// user's process under hidepid, say).
func CPU(pid int) (cpu time.Duration, start int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parse(string(b))
}

// parse reads utime + stime (fields 14 and 15) and starttime
// (field 22) from a stat line; the command name (field 2) may hold
// spaces and parentheses, so count after its last ')'.
func parse(s string) (time.Duration, int64, error) {
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
	return time.Duration((ut + st) * int64(time.Second) / clockTick), start, nil
}

package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCPUMetric(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_totalx 99
process_cpu_seconds_total 12.34
process_max_fds 1024
`
	got, err := parseCPUMetric(strings.NewReader(text))
	if err != nil || got != 12340*time.Millisecond {
		t.Fatalf("got %v, %v", got, err)
	}
	got, err = parseCPUMetric(strings.NewReader(`process_cpu_seconds_total{node="a"} 1.5e+00` + "\n"))
	if err != nil || got != 1500*time.Millisecond {
		t.Fatalf("labelled: got %v, %v", got, err)
	}
	if _, err := parseCPUMetric(strings.NewReader("go_goroutines 3\n")); err == nil {
		t.Fatal("missing metric accepted")
	}
}

func TestParseProcStat(t *testing.T) {
	// The command name holds a space and a parenthesis.
	line := "4242 (my (app) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 1234 0 0"
	got, err := parseProcStat(line)
	if err != nil || got != 3250*time.Millisecond {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := parseProcStat("garbage"); err == nil {
		t.Fatal("garbage accepted")
	}
	if c, err := ProcCPU(os.Getpid()); err != nil || c < 0 {
		t.Fatalf("own process: %v %v", c, err)
	}
	if SelfCPU() <= 0 {
		t.Fatal("SelfCPU is zero")
	}
}

package bench

import (
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

func TestSelfCPU(t *testing.T) {
	if SelfCPU() <= 0 {
		t.Fatal("SelfCPU is zero")
	}
}

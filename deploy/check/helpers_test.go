package check

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/testenv"
)

// repoRoot is the repository root (the folder of go.work).
func repoRoot(t testing.TB) string {
	t.Helper()
	return testenv.Root(t)
}

// roles lists the folders under services/ that hold a main.go.
func roles(t testing.TB) []string {
	t.Helper()
	mains, err := filepath.Glob(filepath.Join(repoRoot(t), "services", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range mains {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	if len(out) == 0 {
		t.Fatal("no services/*/main.go")
	}
	slices.Sort(out)
	return out
}

// knownVars returns the BEDS_* variables the config knows: the env tags of
// config.Overrides, so this list cannot drift from the code.
func knownVars(t testing.TB) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	typ := reflect.TypeFor[config.Overrides]()
	for i := range typ.NumField() {
		tag := typ.Field(i).Tag.Get("env")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" {
			known[name] = true
		}
	}
	if len(known) < 8 {
		t.Fatalf("config.Overrides has only %d env tags: %v", len(known), known)
	}
	return known
}

// cleanEnv is the test process's environment without any BEDS_* or Go target
// variable, so a developer's exported settings never leak into what a test
// runs.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "BEDS_") || k == "GOWORK" || k == "GOOS" || k == "GOARCH" || k == "CGO_ENABLED" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// httpStatus returns the status code of GET url, or 0 when nothing answers.
func httpStatus(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady polls http://addr/readyz until it answers 200 or exited is
// closed or the deadline passes.
func waitReady(t testing.TB, addr string, exited <-chan struct{}, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if httpStatus("http://"+addr+"/readyz") == 200 {
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// run runs a command and returns its combined output and exit code.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	if _, ok := err.(*exec.ExitError); ok {
		err = nil
	}
	return out.String(), code, err
}

// processRunning tells whether pid is alive and not a zombie.
func processRunning(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

package check

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/testenv"
)

// TestClusterScriptVariables checks that scripts/cluster.sh hands the nodes
// only BEDS_* variables shared/config knows (its own are BEDS_CLUSTER_*).
func TestClusterScriptVariables(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	known := knownVars(t)
	for _, v := range regexp.MustCompile(`BEDS_[A-Z0-9_]+`).FindAllString(string(src), -1) {
		if !strings.HasPrefix(v, "BEDS_CLUSTER_") && !known[v] {
			t.Errorf("scripts/cluster.sh uses %s, which shared/config does not know", v)
		}
	}
}

// freeRange finds n consecutive free ports on 127.0.0.1.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base, _ := strconv.Atoi(freePort(t))
		if base+n > 65535 {
			continue
		}
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// TestCluster runs the local cluster end to end with scripts/cluster.sh
// against this test's own vhost and databases: up, requests through
// bedsctl, one appserver killed with SIGKILL, requests still served, down,
// nothing left running.
func TestCluster(t *testing.T) {
	root := repoRoot(t)
	amqpURL, dsn, mongoURI := testenv.AMQP(t), testenv.MariaDB(t), testenv.Mongo(t)
	state := t.TempDir()
	base := freeRange(t, 5)
	env := append(cleanEnv(),
		"BEDS_AMQP_URL="+amqpURL, "BEDS_MARIADB_DSN="+dsn, "BEDS_MONGO_URI="+mongoURI,
		"BEDS_CLUSTER_DIR="+state, "BEDS_CLUSTER_PORT="+strconv.Itoa(base), "BEDS_CLUSTER_TIMEOUT=60")
	script := filepath.Join(root, "scripts", "cluster.sh")
	cluster := func(arg string, within time.Duration) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		start := time.Now()
		out, code, err := run(ctx, root, env, "bash", script, arg)
		if err != nil {
			t.Fatalf("cluster.sh %s: %v\n%s", arg, err, out)
		}
		t.Logf("cluster.sh %s: exit %d in %s", arg, code, time.Since(start).Round(time.Millisecond))
		return out, code
	}
	nodes := []string{"appserver-1", "appserver-2", "admin-1", "segundo-1", "tercero-1"}
	pids := map[string]int{}
	t.Cleanup(func() {
		// Whatever happened, leave nothing running.
		if out, code := cluster("down", time.Minute); code != 0 && !t.Failed() {
			t.Logf("cleanup down: %s", out)
		}
		for name, pid := range pids {
			if processRunning(pid) {
				t.Errorf("%s (pid %d) still runs after down; killing it", name, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			for _, n := range nodes {
				if b, err := os.ReadFile(filepath.Join(state, n+".log")); err == nil {
					t.Logf("--- %s.log\n%s", n, b)
				}
			}
		}
	})

	// Generous: on a cold build cache, building the roles takes minutes on a
	// small machine (readiness itself is bounded by BEDS_CLUSTER_TIMEOUT).
	out, code := cluster("up", 8*time.Minute)
	if code != 0 {
		t.Fatalf("cluster.sh up: exit %d\n%s", code, out)
	}
	for i, n := range nodes {
		b, err := os.ReadFile(filepath.Join(state, n+".pid"))
		if err != nil {
			t.Fatalf("no pid file for %s: %v", n, err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		pids[n] = pid
		if !processRunning(pid) {
			t.Fatalf("%s (pid %d) is not running", n, pid)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", base+i)
		if !strings.Contains(out, addr) || httpStatus("http://"+addr+"/readyz") != 200 {
			t.Errorf("%s: /readyz at %s is not 200 after up, or up did not print it", n, addr)
		}
	}
	if out, code := cluster("status", 30*time.Second); code != 0 {
		t.Errorf("status of a cluster that is up: exit %d\n%s", code, out)
	}

	// bedsctl, built from the shared module with the flags cluster.sh uses
	// (so it reuses their build cache).
	bedsctl := filepath.Join(t.TempDir(), "bedsctl")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if out, code, err := run(ctx, filepath.Join(root, "shared"), append(cleanEnv(), "GOWORK=off", "CGO_ENABLED=0"),
		"go", "build", "-trimpath", "-o", bedsctl, "./cmd/bedsctl"); err != nil || code != 0 {
		t.Fatalf("go build bedsctl: %v\n%s", err, out)
	}
	ctlEnv := append(cleanEnv(), "BEDS_AMQP_URL="+amqpURL)
	bedsctlRun := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, code, err := run(ctx, root, ctlEnv, bedsctl, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out, code
	}
	type reply struct {
		OK   bool             `json:"ok"`
		Node string           `json:"node"`
		Key  any              `json:"key"`
		Rows []map[string]any `json:"rows"`
	}
	call := func(args ...string) (reply, string, int) {
		out, code := bedsctlRun(append([]string{"call"}, args...)...)
		var r reply
		_ = json.Unmarshal([]byte(out), &r)
		return r, out, code
	}

	// Both appservers answer: competing consumers share beds.events.
	out, code = bedsctlRun("ping", "--count", "8")
	if code != 0 {
		t.Fatalf("bedsctl ping: exit %d\n%s", code, out)
	}
	for _, n := range []string{"appserver-1", "appserver-2"} {
		if !strings.Contains(out, "reply from "+n) {
			t.Errorf("no ping answered by %s:\n%s", n, out)
		}
	}
	r, out, code := call("users", "create", "--data", `{"email":"cluster@example.com","name":"Cluster"}`)
	if code != 0 || !r.OK || r.Key == nil {
		t.Fatalf("bedsctl call users create: exit %d\n%s", code, out)
	}
	r, out, code = call("users", "read", "--filter", `{"email":"cluster@example.com"}`)
	if code != 0 || !r.OK || len(r.Rows) != 1 || r.Rows[0]["name"] != "Cluster" {
		t.Fatalf("bedsctl call users read: exit %d\n%s", code, out)
	}

	// One appserver dies without a drain; the other serves everything.
	victim := pids["appserver-1"]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processRunning(victim) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if processRunning(victim) {
		t.Fatal("appserver-1 still runs 10s after SIGKILL")
	}
	served := 0
	deadline = time.Now().Add(30 * time.Second)
	for i := 0; served < 5 && time.Now().Before(deadline); i++ {
		email := fmt.Sprintf("after-kill-%d@example.com", i)
		r, out, code := call("users", "create", "--data", `{"email":"`+email+`"}`, "--timeout", "5s")
		if code != 0 || !r.OK {
			t.Logf("create after the kill (retrying): exit %d %s", code, out)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if r.Node != "appserver-2" {
			t.Errorf("a reply from %q after appserver-1 died", r.Node)
		}
		r, out, code = call("users", "read", "--filter", `{"email":"`+email+`"}`, "--timeout", "5s")
		if code != 0 || !r.OK || len(r.Rows) != 1 {
			t.Errorf("read after the kill: exit %d\n%s", code, out)
		}
		served++
	}
	if served < 5 {
		t.Fatalf("only %d requests served within 30s of killing appserver-1", served)
	}
	if out, code := bedsctlRun("ping", "--count", "3"); code != 0 || strings.Count(out, "reply from appserver-2") != 3 {
		t.Errorf("ping after the kill: exit %d\n%s", code, out)
	}
	if out, code := cluster("status", 30*time.Second); code == 0 || !strings.Contains(out, "appserver-1") {
		t.Errorf("status with appserver-1 dead: exit %d, want non-zero\n%s", code, out)
	}

	// down: every live node drains on SIGTERM and exits; nothing is left.
	out, code = cluster("down", time.Minute)
	if code != 0 {
		t.Errorf("cluster.sh down: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "appserver-1 was not running") {
		t.Errorf("down does not report the dead appserver-1:\n%s", out)
	}
	for _, n := range nodes[1:] {
		if !strings.Contains(out, n+" (pid "+strconv.Itoa(pids[n])+") stopped") {
			t.Errorf("down does not report %s stopped:\n%s", n, out)
		}
		logs, _ := os.ReadFile(filepath.Join(state, n+".log"))
		if !strings.Contains(string(logs), "msg=stopped") {
			t.Errorf("%s did not log a clean stop", n)
		}
	}
	for n, pid := range pids {
		if processRunning(pid) {
			t.Errorf("%s (pid %d) still runs after down", n, pid)
		}
	}
	// No process of ours at all, whatever the pid files said.
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		if exe, err := os.Readlink(p); err == nil && strings.HasPrefix(exe, filepath.Join(state, "bin")+"/") {
			t.Errorf("%s (%s) still runs after down", exe, p)
		}
	}
	if out, code := cluster("status", 30*time.Second); code == 0 {
		t.Errorf("status after down: exit 0\n%s", out)
	}
}

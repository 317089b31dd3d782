// Package ipltest runs a node inside a test: it boots a role through the
// real IPL against real servers, runs it until the test ends, and checks
// that it drains cleanly.
package ipltest

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/testenv"
)

// Env returns the environment of a node using this test's own servers
// (a vhost, a MariaDB database, a MongoDB database), the repository's
// config and templates, and a free ops port. extra entries override.
func Env(t testing.TB, extra map[string]string) map[string]string {
	t.Helper()
	root := testenv.Root(t)
	env := map[string]string{
		"BEDS_CONFIG_DIR":   filepath.Join(root, "deploy", "config"),
		"BEDS_TEMPLATE_DIR": filepath.Join(root, "templates"),
		"BEDS_AMQP_URL":     testenv.AMQP(t),
		"BEDS_MARIADB_DSN":  testenv.MariaDB(t),
		"BEDS_MONGO_URI":    testenv.Mongo(t),
		"BEDS_HTTP_ADDR":    "127.0.0.1:0",
		"BEDS_LOG_LEVEL":    "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// Start boots role with environ and runs it until the test ends, when it
// must drain without error. It returns once the node is ready.
func Start(t testing.TB, role ipl.Role, environ map[string]string) *ipl.Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := ipl.Boot(ctx, role, environ)
	if err != nil {
		cancel()
		t.Fatalf("boot %s: %v", role.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s stopped with: %v", role.Name, err)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 15s", role.Name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// CheckOps asserts the node's ops endpoint answers /healthz, /readyz and
// /metrics with 200.
func CheckOps(t testing.TB, n *ipl.Node) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + n.Addr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
}

// Boots runs role through the whole IPL against this test's servers as a
// node named test-<role>: it must report healthy and ready, carry its
// name, and drain cleanly when the test ends.
func Boots(t testing.TB, role ipl.Role) *ipl.Node {
	t.Helper()
	name := "test-" + role.Name
	n := Start(t, role, Env(t, map[string]string{"BEDS_NODE_NAME": name}))
	CheckOps(t, n)
	if got := n.Runtime().Config.Node.Name; got != name {
		t.Fatalf("node name %q, want %q", got, name)
	}
	return n
}

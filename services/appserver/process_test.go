package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// buildBinary builds this role's binary once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "appserver")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// processEnv is the environment of a node started the way the README says,
// pointed at this test's servers.
func processEnv(t *testing.T, extra ...string) []string {
	root := testenv.Root(t)
	env := append(os.Environ(),
		"BEDS_CONFIG_DIR="+filepath.Join(root, "deploy", "config"),
		"BEDS_TEMPLATE_DIR="+filepath.Join(root, "templates"),
	)
	return append(env, extra...)
}

// TestProcess runs the appserver binary, answers a request sent with a
// plain AMQP client, and drains on SIGTERM with exit code 0.
func TestProcess(t *testing.T) {
	s := servers{amqpURL: testenv.AMQP(t), mariaDSN: testenv.MariaDB(t), mongoURI: testenv.Mongo(t)}
	bin := buildBinary(t)
	httpAddr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = processEnv(t, "BEDS_AMQP_URL="+s.amqpURL, "BEDS_MARIADB_DSN="+s.mariaDSN,
		"BEDS_MONGO_URI="+s.mongoURI, "BEDS_HTTP_ADDR="+httpAddr, "BEDS_NODE_NAME=proc-1")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("node output:\n%s", logs.String())
		}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("node not ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, tc := range []struct{ key, body, template string }{
		{wire.RouteWrite, `{"template":"users","op":"create","data":{"email":"p@example.com"}}`, "users"},
		{wire.RouteWrite, `{"template":"profiles","op":"create","data":{"user":1,"handle":"p"}}`, "profiles"},
		{wire.RouteRead, `{"template":"users","op":"read","filter":{"email":"p@example.com"}}`, "users"},
		{wire.RouteRead, `{"template":"profiles","op":"count"}`, "profiles"},
	} {
		body := rawCallBody(t, s.amqpURL, tc.key, amqp.Publishing{ContentType: wire.ContentType, Body: []byte(tc.body)}, 10*time.Second)
		var r wire.Reply
		must(t, json.Unmarshal(body, &r))
		if !r.OK || r.Node != "proc-1" {
			t.Fatalf("%s: reply %s", tc.body, body)
		}
	}

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	for _, want := range []string{"step=templates", "step=topology", "step=pools", "draining", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestBootFailures checks that a node that cannot start says where and
// why, never shows a password, and exits 1.
func TestBootFailures(t *testing.T) {
	bin := buildBinary(t)
	badTemplates := t.TempDir()
	must(t, os.WriteFile(filepath.Join(badTemplates, "bad_rec.toml"), []byte(
		"name = \"bad\"\ntla = \"bad\"\nkind = \"rec\"\nstore = \"mariadb\"\n\n[fields]\nid = { type = \"int\", key = true }\nemail = { tpye = \"string\" }\n"), 0o644))
	closed := freeAddr(t) // nothing listens here
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"bad template, dev", []string{"BEDS_TEMPLATE_DIR=" + badTemplates},
			[]string{"did not start", "IPL step templates", "bad_rec.toml:8", `unknown key "fields.email.tpye"`}},
		{"RabbitMQ unreachable, dev", []string{"BEDS_AMQP_URL=amqp://guest:s3cret@" + closed + "/"},
			[]string{"IPL step amqp (" + closed + ")", "Is the server at " + closed + " running?"}},
		{"RabbitMQ unreachable, prod", []string{"BEDS_ENV=prod", "BEDS_AMQP_URL=amqp://beds-node:s3cret@" + closed + "/",
			"BEDS_MARIADB_DSN=beds-app:s3cret@tcp(" + closed + ")/beds", "BEDS_MONGO_URI=mongodb://beds-node:s3cret@" + closed + "/beds"},
			[]string{`"step":"amqp"`, `"target":"` + closed + `"`, `"level":"ERROR"`}},
		{"bad env", []string{"BEDS_ENV=staging"}, []string{"staging", "must be dev, qa or prod"}},
		{"guest, prod", []string{"BEDS_ENV=prod", "BEDS_AMQP_URL=amqp://guest:s3cret@" + closed + "/"},
			[]string{"config amqp.url", "stock user guest"}},
		{"default store credentials, prod", []string{"BEDS_ENV=prod", "BEDS_AMQP_URL=amqp://beds-node:s3cret@" + closed + "/",
			"BEDS_MONGO_URI=mongodb://beds-node:beds-node@" + closed + "/beds"},
			[]string{`"step":"stores"`, "config stores.mariadb.dsn", "without a password", "config stores.mongo.uri", "MONGO_NODE_PASSWORD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = processEnv(t, append([]string{"BEDS_HTTP_ADDR=" + freeAddr(t)}, tc.env...)...)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Fatalf("exit code %d (%v), want 1\n%s", code, err, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(string(out), "s3cret") {
				t.Errorf("output shows the password:\n%s", out)
			}
			if strings.Contains(tc.name, "prod") {
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				var m map[string]any
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
					t.Errorf("prod failure is not one JSON line: %v\n%s", err, out)
				}
			}
		})
	}
}

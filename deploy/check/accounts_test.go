package check

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// grantsOf runs deploy/mariadb/accounts/accounts.sh as the mariadb
// container would and returns, per account, the objects it is granted:
// "SELECT vw_usr", "EXECUTE sp_usr_create", "SELECT, INSERT beds_events".
func grantsOf(t *testing.T, env map[string]string) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	out, code, err := run(ctx, repoRoot(t), append(kv, "PATH="+os.Getenv("PATH")), "bash", "deploy/mariadb/accounts/accounts.sh")
	if err != nil || code != 0 {
		t.Fatalf("accounts.sh: exit %d %v\n%s", code, err, out)
	}
	grant := regexp.MustCompile("^GRANT (.+) ON (?:PROCEDURE )?`beds`\\.`([a-z0-9_]+)` TO '([a-z-]+)'@'%';$")
	m := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if g := grant.FindStringSubmatch(line); g != nil {
			m[g[3]] = append(m[g[3]], g[1]+" "+g[2])
		} else if strings.HasPrefix(line, "GRANT ") && !strings.HasPrefix(line, "GRANT USAGE ON *.* TO ") {
			t.Errorf("a grant this test does not know: %s", line)
		}
	}
	return m
}

var accountsEnv = map[string]string{
	"MARIADB_DATABASE": "beds",
	"MARIADB_APP_USER": "app", "MARIADB_APP_PASSWORD": "pw-a",
	"MARIADB_TERCERO_USER": "tercero", "MARIADB_TERCERO_PASSWORD": "pw-t",
}

// TestMariaDBAccounts checks what deploy/mariadb/accounts/accounts.sh
// grants: each of the appservers' templates (templates/) its view and
// allowed procedures to the appservers' account, tercero's (acc, ses, flr)
// to tercero's only, the idempotency and lineage tables to both, and
// nothing else: no tbl_*, no database-wide privilege. TestLeastPrivilege
// in services/appserver applies the same script to a real database.
func TestMariaDBAccounts(t *testing.T) {
	root := repoRoot(t)
	grants := grantsOf(t, accountsEnv)
	shared := []string{"SELECT, INSERT beds_events", "SELECT, INSERT, UPDATE beds_lineage"}
	for _, acc := range []string{"app", "tercero"} {
		for _, g := range shared {
			if !slices.Contains(grants[acc], g) {
				t.Errorf("%s lacks %s", acc, g)
			}
		}
		for _, g := range grants[acc] {
			kind, obj, _ := strings.Cut(g, " ")
			switch {
			case slices.Contains(shared, g):
			case kind == "SELECT" && strings.HasPrefix(obj, "vw_"), kind == "EXECUTE" && strings.HasPrefix(obj, "sp_"):
				tercero := regexp.MustCompile(`^(vw_(acc|ses|flr)|sp_(acc|ses|flr)_.*)$`).MatchString(obj)
				if tercero != (acc == "tercero") {
					t.Errorf("%s is granted %s", acc, g)
				}
			default:
				t.Errorf("%s is granted %s: only views (SELECT), procedures (EXECUTE) and BEDS's two tables", acc, g)
			}
		}
	}

	// Every object a template uses is granted to the account of the role
	// that serves it.
	covers := func(acc string, dir string) int {
		reg, err := template.Load(dir, config.Default().StoreKinds())
		if err != nil {
			t.Fatalf("templates %s: %v", dir, err)
		}
		n := 0
		for _, name := range reg.Names() {
			tp := reg.Get(name)
			if tp.StoreKind != template.StoreMariaDB {
				continue
			}
			n++
			o := tp.Objects
			want := map[string]wire.Op{"SELECT " + o.Read: wire.OpRead, "EXECUTE " + o.Create: wire.OpCreate,
				"EXECUTE " + o.Update: wire.OpUpdate, "EXECUTE " + o.Delete: wire.OpDelete}
			for g, op := range want {
				if tp.Allows(op) && !slices.Contains(grants[acc], g) {
					t.Errorf("template %s (%s): %s is not granted %s", name, dir, acc, g)
				}
			}
		}
		return n
	}
	if covers("app", filepath.Join(root, "templates")) == 0 {
		t.Error("no MariaDB template in templates/: is the check still looking at the right things?")
	}
	if dir := filepath.Join(root, "services", "tercero", "templates"); dirExists(dir) {
		covers("tercero", dir)
	} else {
		t.Logf("no %s yet: tercero's grants are checked by name only", dir)
	}

	// Passwords and names that would need escaping are refused, not quoted.
	for k, bad := range map[string]string{"MARIADB_APP_PASSWORD": "it's", "MARIADB_TERCERO_USER": "a b", "MARIADB_APP_USER": ""} {
		env := map[string]string{}
		for ek, ev := range accountsEnv {
			env[ek] = ev
		}
		env[k] = bad
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var kv []string
		for ek, ev := range env {
			kv = append(kv, ek+"="+ev)
		}
		out, code, err := run(ctx, root, append(kv, "PATH="+os.Getenv("PATH")), "bash", "deploy/mariadb/accounts/accounts.sh")
		cancel()
		if err != nil || code == 0 || !strings.Contains(out, k) || (bad != "" && strings.Contains(out, bad)) {
			t.Errorf("%s=%q: exit %d %v, want a refusal naming %s and not the value\n%s", k, bad, code, err, k, out)
		}
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// TestRabbitMQAccounts checks deploy/rabbitmq/accounts.sh's permissions
// against the contract's names: the applications' user may write only to
// the exchange beds and configure and read nothing; the nodes' user may
// configure exactly the topology, read the request queues but not
// beds.dead, and write replies (amq.default) and dead letters. The
// services/appserver test TestLeastPrivilege proves them on RabbitMQ.
func TestRabbitMQAccounts(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "rabbitmq", "accounts.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Evaluate the script's permission variables with bash itself.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := string(src)
	body = body[:strings.Index(body, "account() {")]
	prog := body + `printf '%s\n' "$node_configure" "$node_write" "$node_read" "$app_configure" "$app_write" "$app_read"`
	out, code, err := run(ctx, repoRoot(t), []string{"PATH=" + os.Getenv("PATH")}, "bash", "-c", prog)
	if err != nil || code != 0 {
		t.Fatalf("bash: exit %d %v\n%s", code, err, out)
	}
	p := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(p) != 6 {
		t.Fatalf("want six permissions, got %q", out)
	}
	perm := map[string]*regexp.Regexp{}
	for i, name := range []string{"node configure", "node write", "node read", "app configure", "app write", "app read"} {
		perm[name] = regexp.MustCompile(p[i]) // RabbitMQ's are PCRE; these use nothing Go lacks
	}
	topology := []string{wire.Exchange, wire.DeadExchange, wire.EventsQueue, wire.TerceroQueue, wire.DeadQueue}
	others := []string{"", "amq.topic", "amq.gen-abc", "beds.x", "beds.events2", "xbeds", "other", wire.DirectReplyTo}
	for _, tc := range []struct {
		perm     string
		allowed  []string
		excluded []string
	}{
		{"app configure", nil, append(slices.Clone(topology), others...)},
		{"app write", []string{wire.Exchange}, append([]string{wire.DeadExchange, wire.EventsQueue, "amq.default"}, others...)},
		{"app read", nil, append(slices.Clone(topology), others...)},
		{"node configure", topology, append([]string{"amq.default"}, others...)},
		{"node write", append([]string{"amq.default"}, topology...), others},
		{"node read", []string{wire.Exchange, wire.DeadExchange, wire.EventsQueue, wire.TerceroQueue},
			append([]string{wire.DeadQueue, "amq.default"}, others...)},
	} {
		for _, name := range tc.allowed {
			if !perm[tc.perm].MatchString(name) {
				t.Errorf("%s does not match %q", tc.perm, name)
			}
		}
		for _, name := range tc.excluded {
			if name != "" && perm[tc.perm].MatchString(name) {
				t.Errorf("%s matches %q", tc.perm, name)
			}
		}
	}
}

// TestMongoAccounts runs deploy/mongo/accounts.js, as the mongo image's
// mongosh would, under Node.js with a db object that records the calls:
// there is no mongosh here, and the FerretDB this project tests against
// has no user management (createUser is not a command it knows), so no
// server here can run it. It checks the script creates the nodes' user
// with readWrite on its own database only, updates an existing one, and
// refuses to run without a user or password.
func TestMongoAccounts(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no Node.js to run deploy/mongo/accounts.js with")
	}
	src := filepath.Join(repoRoot(t), "deploy", "mongo", "accounts.js")
	harness := `
const calls = [];
const existing = process.argv[2] === 'existing';
globalThis.db = {
  getName: () => 'beds',
  getUser: (u) => existing ? { user: u } : null,
  createUser: (spec) => calls.push(['createUser', spec]),
  updateUser: (u, spec) => calls.push(['updateUser', u, spec]),
};
globalThis.print = () => {};
try {
  require(process.argv[1]);
} catch (e) {
  console.log(JSON.stringify({ error: e.message }));
  process.exit(0);
}
console.log(JSON.stringify({ calls }));
`
	for _, tc := range []struct {
		name, mode string
		env        []string
		want       string
	}{
		{"new", "new", []string{"MONGO_NODE_USER=beds-node", "MONGO_NODE_PASSWORD=s3"},
			`{"calls":[["createUser",{"user":"beds-node","pwd":"s3","roles":[{"role":"readWrite","db":"beds"}]}]]}`},
		{"existing", "existing", []string{"MONGO_NODE_USER=beds-node", "MONGO_NODE_PASSWORD=s3"},
			`{"calls":[["updateUser","beds-node",{"pwd":"s3","roles":[{"role":"readWrite","db":"beds"}]}]]}`},
		{"no password", "new", []string{"MONGO_NODE_USER=beds-node"},
			`{"error":"accounts.js: set MONGO_NODE_USER and MONGO_NODE_PASSWORD in the mongo container"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, code, err := run(ctx, t.TempDir(), append(tc.env, "PATH="+os.Getenv("PATH")), node, "-e", harness, src, tc.mode)
			if err != nil || code != 0 || strings.TrimSpace(out) != tc.want {
				t.Errorf("exit %d %v:\n%s\nwant %s", code, err, out, tc.want)
			}
		})
	}
}

// TestRabbitMQEntrypoint runs deploy/rabbitmq/entrypoint.sh with stand-ins
// for the image's commands (docker-entrypoint.sh, rabbitmq-diagnostics,
// rabbitmqctl: there is no Docker engine here) and the real accounts.sh:
// the server starts with the given arguments, the accounts are set, the
// healthcheck's marker appears only then, SIGTERM reaches the server and
// the container exits with its status; when the accounts cannot be set,
// the server is stopped, no marker appears and the container exits 1.
func TestRabbitMQEntrypoint(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ctlFails bool
	}{{"accounts set", false}, {"accounts fail", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(os.Mkdir(bin, 0o755))
			logf := filepath.Join(dir, "log")
			fail := "false"
			if tc.ctlFails {
				fail = "true"
			}
			for name, body := range map[string]string{
				"docker-entrypoint.sh": `trap 'echo server stopped >> "$LOG"; exit 0' TERM
echo "server started $*" >> "$LOG"
while :; do sleep 0.05; done`,
				"rabbitmq-diagnostics": `exit 0`,
				"rabbitmqctl": `echo "rabbitmqctl $*" >> "$LOG"
case "$*" in *set_permissions*) if ` + fail + `; then exit 1; fi ;; esac
case "$*" in *list_users*) exit 0 ;; *add_user*|*change_password*) read -r pw; echo "password read" >> "$LOG" ;; esac`,
			} {
				must(os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755))
			}
			marker := filepath.Join(dir, "applied")
			cmd := exec.Command("bash", filepath.Join(repoRoot(t), "deploy", "rabbitmq", "entrypoint.sh"), "rabbitmq-server")
			cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "LOG=" + logf, "ACCOUNTS_MARKER=" + marker,
				"AMQP_NODE_USER=beds-node", "AMQP_NODE_PASSWORD=n0de", "AMQP_APP_USER=beds-app", "AMQP_APP_PASSWORD=app"}
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			must(cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					<-exited
				}
			}()

			if tc.ctlFails {
				select {
				case <-exited:
				case <-time.After(30 * time.Second):
					t.Fatal("entrypoint.sh did not exit within 30s after the accounts failed")
				}
				if code := cmd.ProcessState.ExitCode(); code != 1 {
					t.Errorf("exit %d, want 1\n%s", code, out.String())
				}
				if _, err := os.Stat(marker); err == nil {
					t.Error("the healthcheck's marker exists though the accounts failed")
				}
			} else {
				deadline := time.Now().Add(30 * time.Second)
				for {
					if _, err := os.Stat(marker); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no marker within 30s\n%s", out.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
				must(cmd.Process.Signal(syscall.SIGTERM))
				select {
				case <-exited:
				case <-time.After(30 * time.Second):
					t.Fatal("entrypoint.sh did not exit within 30s of SIGTERM")
				}
				if code := cmd.ProcessState.ExitCode(); code != 0 {
					t.Errorf("exit %d after SIGTERM, want the server's 0\n%s", code, out.String())
				}
			}
			b, err := os.ReadFile(logf)
			must(err)
			log := string(b)
			for _, want := range []string{"server started rabbitmq-server", "add_user -- beds-node", "password read", "server stopped"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if !tc.ctlFails && (!strings.Contains(log, "add_user -- beds-app") || !strings.Contains(log, "set_permissions -p / -- beds-app ^$ ^beds$ ^$")) {
				t.Errorf("the applications' permissions were not set:\n%s", log)
			}
			if strings.Contains(log, "n0de") {
				t.Errorf("a password reached rabbitmqctl's command line:\n%s", log)
			}
		})
	}
}

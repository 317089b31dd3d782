package check

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
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

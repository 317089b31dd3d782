package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// The access tests run tercero and appserver binaries as processes,
// through RabbitMQ, on the test's own vhost and databases: notes
// (MariaDB) and memos (MongoDB) are templates whose rows belong to users
// (testdata/access).

// accessCache is the appservers' [access] cache in these tests: a revoked
// or ended session must be refused within it.
const accessCache = 2 * time.Second

// accessConfig is the test layer of the nodes' config: cheap password
// hashing (the test is about rules, not cost), the appservers' session
// cache, and few failed logins before the limit.
func accessConfig(cache time.Duration) string {
	return fmt.Sprintf(`
[access]
cache = %q

[tercero.argon2]
time = 1
memory_kib = 1024
threads = 1

[tercero.attempts]
account = 3
caller = 100
`, cache.String())
}

// cluster is a tercero and an appserver run as processes.
type cluster struct {
	s              servers
	cfg, templates string
	tercero, app   *node
	bins           map[string]string
	db             *sql.DB
}

// node is one role's process.
type node struct {
	role, name, http string
	cmd              *exec.Cmd
	logs             *syncBuffer
	exited           chan error
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test
// reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// buildRole builds a role's binary from services/<role>.
func buildRole(t *testing.T, role string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), role)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(testenv.Root(t), "services", role)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", role, err, out)
	}
	return bin
}

// newCluster prepares the servers, config and templates, and starts a
// tercero and an appserver whose sessions cache keeps answers for cache.
func newCluster(t *testing.T, cache time.Duration) *cluster {
	t.Helper()
	root := testenv.Root(t)
	mongoDir := filepath.Join(root, "deploy", "mongo")
	mongoFiles, _ := filepath.Glob(filepath.Join(mongoDir, "[0-9][0-9][0-9]_*.js"))
	mongoFiles = append([]string{filepath.Join(mongoDir, "indexes.json")}, mongoFiles...)
	c := &cluster{
		s: servers{amqpURL: testenv.AMQP(t), mariaDSN: testenv.MariaDB(t),
			mongoURI: testenv.MongoWith(t, append(mongoFiles, filepath.Join("testdata", "access", "memos.js"))...)},
		bins: map[string]string{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, testenv.ApplySQL(ctx, c.s.mariaDSN, filepath.Join("testdata", "access", "notes.sql")))
	var err error
	c.db, err = sql.Open("mysql", c.s.mariaDSN)
	must(t, err)
	t.Cleanup(func() { c.db.Close() })
	c.cfg = configDir(t, accessConfig(cache))
	c.templates = t.TempDir()
	for _, pattern := range []string{filepath.Join(root, "templates", "*.toml"), filepath.Join("testdata", "access", "*.toml")} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			must(t, err)
			must(t, os.WriteFile(filepath.Join(c.templates, filepath.Base(f)), b, 0o644))
		}
	}
	for _, role := range []string{"tercero", "appserver"} {
		c.bins[role] = buildRole(t, role)
	}
	c.tercero = c.start(t, "tercero", "tercero-1")
	c.app = c.start(t, "appserver", "app-1")
	return c
}

// start runs one node of role and waits until it is ready.
func (c *cluster) start(t *testing.T, role, name string) *node {
	t.Helper()
	n := &node{role: role, name: name, http: freeAddr(t), logs: &syncBuffer{}, exited: make(chan error, 1)}
	n.cmd = exec.Command(c.bins[role])
	n.cmd.Env = append(os.Environ(),
		"BEDS_CONFIG_DIR="+c.cfg, "BEDS_TEMPLATE_DIR="+c.templates,
		"BEDS_AMQP_URL="+c.s.amqpURL, "BEDS_MARIADB_DSN="+c.s.mariaDSN, "BEDS_MONGO_URI="+c.s.mongoURI,
		"BEDS_HTTP_ADDR="+n.http, "BEDS_NODE_NAME="+name, "BEDS_LOG_LEVEL=debug")
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	must(t, n.cmd.Start())
	go func() { n.exited <- n.cmd.Wait() }()
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, n.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + n.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		select {
		case err := <-n.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, err, n.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dial returns a client of the test's vhost as guest, whom env_dev.toml
// trusts as an admin service.
func (c *cluster) dial(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, c.s.amqpURL, client.Options{Name: "access-test", Timeout: 15 * time.Second})
	must(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// user is a registered user with a session.
type user struct {
	name, password string
	id             int64
	token          string
}

// as is the call option that acts as u.
func (u *user) as() client.CallOption { return client.WithSession(u.token) }

// register adds name with roles and logs it in.
func register(t *testing.T, ctx context.Context, admin *client.Client, name string, roles ...string) *user {
	t.Helper()
	u := &user{name: name, password: "pw-" + name + "-" + testenv.Name("")}
	must(t, admin.Register(ctx, name, u.password, roles))
	id, err := admin.Login(ctx, name, u.password)
	must(t, err)
	u.id, u.token = id.User, id.Token
	if u.id == 0 || len(u.token) != 64 {
		t.Fatalf("login %s: identity %+v", name, id)
	}
	return u
}

// code returns the contract code of err, "" for nil.
func code(err error) wire.Code {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	if err != nil {
		return "not a *wire.Error: " + wire.Code(err.Error())
	}
	return ""
}

// send sends one data request.
func send(ctx context.Context, cl *client.Client, req wire.Request, opts ...client.CallOption) (*wire.Reply, error) {
	return cl.Do(ctx, &req, opts...)
}

// TestAccessEndToEnd follows issue 13's story through RabbitMQ with a
// tercero and an appserver: users registered and logged in, reads
// allowed by role, a write refused, owner-limited rows on both stores,
// a revoked and an ended session refused within the cache time, the
// attempt limit, and no token or password stored or logged.
func TestAccessEndToEnd(t *testing.T) {
	c := newCluster(t, accessCache)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := c.dial(t)
	alice := register(t, ctx, admin, "alice", "member")
	bob := register(t, ctx, admin, "bob", "member")
	vic := register(t, ctx, admin, "vic", "viewer")

	t.Run("who", func(t *testing.T) {
		id, err := admin.Whoami(ctx, alice.as())
		if err != nil || id.Name != "alice" || id.User != alice.id || !id.Has("member") || id.Token != "" {
			t.Fatalf("whoami alice: %+v %v", id, err)
		}
	})

	t.Run("roles", func(t *testing.T) {
		// users: members read, only admins write (templates/users_rec.toml).
		if _, err := send(ctx, admin, wire.Request{Template: "users", Op: wire.OpRead, Limit: 1}, alice.as()); err != nil {
			t.Errorf("member reads users: %v", err)
		}
		_, err := send(ctx, admin, wire.Request{Template: "users", Op: wire.OpCreate, Data: json.RawMessage(`{"email":"a@example.com"}`)}, alice.as())
		if code(err) != wire.CodeForbidden {
			t.Errorf("member creates a user: %v, want forbidden", err)
		}
		_, err = send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpRead}, vic.as())
		if code(err) != wire.CodeForbidden {
			t.Errorf("viewer reads notes: %v, want forbidden", err)
		}
		if _, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCount}, vic.as()); err != nil {
			t.Errorf("viewer counts notes: %v", err)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		// Neither a session nor a trusted user_id: nobody.
		body := rawCallAs(t, c.s.amqpURL, wire.RouteRead, amqp.Publishing{ContentType: wire.ContentType,
			Body: []byte(`{"template":"notes","op":"read"}`)}, 15*time.Second)
		var r wire.Reply
		must(t, json.Unmarshal(body, &r))
		if r.OK || r.Error == nil || r.Error.Code != wire.CodeUnauthenticated {
			t.Errorf("anonymous read: %s", body)
		}
		_, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpRead}, client.WithSession(strings.Repeat("0", 64)))
		if code(err) != wire.CodeUnauthenticated {
			t.Errorf("unknown token: %v, want unauthenticated", err)
		}
	})

	for _, tmpl := range []string{"notes", "memos"} {
		t.Run("owner "+tmpl, func(t *testing.T) {
			for _, w := range []struct {
				u    *user
				text string
			}{{alice, "a1"}, {alice, "a2"}, {bob, "b1"}} {
				data := json.RawMessage(fmt.Sprintf(`{"text":%q}`, w.text))
				if tmpl == "memos" {
					data = json.RawMessage(fmt.Sprintf(`{"id":"%s-%s","text":%q}`, w.u.name, w.text, w.text))
				}
				if _, err := send(ctx, admin, wire.Request{Template: tmpl, Op: wire.OpCreate, Data: data}, w.u.as()); err != nil {
					t.Fatalf("%s creates %s: %v", w.u.name, w.text, err)
				}
			}
			for _, tc := range []struct {
				u    *user
				want []string
			}{{alice, []string{"a1", "a2"}}, {bob, []string{"b1"}}} {
				r, err := send(ctx, admin, wire.Request{Template: tmpl, Op: wire.OpRead, Sort: []string{"id"}}, tc.u.as())
				if err != nil {
					t.Fatalf("%s reads: %v", tc.u.name, err)
				}
				var got []string
				for _, row := range r.Rows {
					if fmt.Sprint(row["owner"]) != fmt.Sprint(tc.u.id) {
						t.Errorf("%s read a row of owner %v: %v", tc.u.name, row["owner"], row)
					}
					got = append(got, fmt.Sprint(row["text"]))
				}
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("%s reads %s %v, want %v", tc.u.name, tmpl, got, tc.want)
				}
			}
			all, err := send(ctx, admin, wire.Request{Template: tmpl, Op: wire.OpCount})
			if err != nil || all.Count != 3 {
				t.Errorf("the admin service counts %v %v, want 3", all, err)
			}
			// Another's owner in data, and another's rows by filter.
			_, err = send(ctx, admin, wire.Request{Template: tmpl, Op: wire.OpCreate,
				Data: json.RawMessage(fmt.Sprintf(`{"id":"x-%d","owner":%d,"text":"x"}`, bob.id, bob.id))}, alice.as())
			if tmpl == "notes" {
				_, err = send(ctx, admin, wire.Request{Template: tmpl, Op: wire.OpCreate,
					Data: json.RawMessage(fmt.Sprintf(`{"owner":%d,"text":"x"}`, bob.id))}, alice.as())
			}
			if code(err) != wire.CodeForbidden {
				t.Errorf("alice creates bob's row: %v, want forbidden", err)
			}
			r, err := send(ctx, admin, wire.Request{Template: tmpl, Op: wire.OpDelete,
				Filter: json.RawMessage(`{"text":"b1"}`)}, alice.as())
			if err == nil && r.Affected != 0 || err != nil && code(err) != wire.CodeNotFound {
				t.Errorf("alice deletes bob's row: %+v %v, want nothing deleted", r, err)
			}
		})
	}

	t.Run("revoked", func(t *testing.T) {
		if _, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCount}, bob.as()); err != nil {
			t.Fatalf("bob before revoke: %v", err)
		}
		if _, err := admin.Revoke(ctx, "bob"); err != nil {
			t.Fatalf("revoke bob: %v", err)
		}
		refusedWithin(t, ctx, admin, bob, "revoked")
	})

	t.Run("ended", func(t *testing.T) {
		if _, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCount}, vic.as()); err != nil {
			t.Fatalf("vic before the end: %v", err)
		}
		// The DBA's view of time passing: the session's absolute expiry
		// is in the past.
		res, err := c.db.ExecContext(ctx, "UPDATE tbl_ses SET ses_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE ses_user = ?", vic.id)
		must(t, err)
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("ended %d sessions of vic, want 1", n)
		}
		refusedWithin(t, ctx, admin, vic, "ended")
	})

	t.Run("attempts", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			if _, err := admin.Login(ctx, "alice", "wrong"); code(err) != wire.CodeUnauthenticated {
				t.Fatalf("wrong password %d: %v, want unauthenticated", i, err)
			}
		}
		if _, err := admin.Login(ctx, "alice", alice.password); code(err) != wire.CodeRateLimited {
			t.Errorf("login after 3 failures: %v, want rate_limited", err)
		}
		// The session alice holds is not touched by the limit.
		if _, err := send(ctx, admin, wire.Request{Template: "notes", Op: wire.OpCount}, alice.as()); err != nil {
			t.Errorf("alice's session under the limit: %v", err)
		}
	})

	t.Run("nothing secret stored or logged", func(t *testing.T) {
		secrets := map[string]string{}
		for _, u := range []*user{alice, bob, vic} {
			secrets[u.name+"'s password"] = u.password
			secrets[u.name+"'s token"] = u.token
		}
		for _, table := range []string{"tbl_acc", "tbl_ses", "tbl_flr", "beds_events", "beds_lineage"} {
			dump := dumpTable(t, ctx, c.db, table)
			for what, s := range secrets {
				if strings.Contains(dump, s) {
					t.Errorf("table %s holds %s", table, what)
				}
			}
		}
		for _, n := range []*node{c.tercero, c.app} {
			logs := n.logs.String()
			if !strings.Contains(logs, "level=DEBUG") {
				t.Fatalf("%s logged nothing at debug level: the check would prove nothing", n.name)
			}
			for what, s := range secrets {
				if strings.Contains(logs, s) {
					t.Errorf("%s's log holds %s", n.name, what)
				}
			}
		}
	})
}

// refusedWithin checks that u's session, which just ended, is refused
// unauthenticated within the appserver's cache time (and a margin for
// the requests themselves), and stays refused.
func refusedWithin(t *testing.T, ctx context.Context, cl *client.Client, u *user, why string) {
	t.Helper()
	deadline := time.Now().Add(accessCache + 3*time.Second)
	for {
		_, err := send(ctx, cl, wire.Request{Template: "notes", Op: wire.OpCount}, u.as())
		if code(err) == wire.CodeUnauthenticated {
			break
		}
		if err != nil {
			t.Fatalf("%s session: %v, want ok or unauthenticated", why, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s session still served %s after it ended (cache %s)", why, accessCache+3*time.Second, accessCache)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := send(ctx, cl, wire.Request{Template: "notes", Op: wire.OpCount}, u.as()); code(err) != wire.CodeUnauthenticated {
		t.Errorf("%s session served again: %v", why, err)
	}
}

// dumpTable returns every value of table as text.
func dumpTable(t *testing.T, ctx context.Context, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
	must(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	must(t, err)
	var b strings.Builder
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		must(t, rows.Scan(ptrs...))
		for _, v := range vals {
			b.Write(v)
			b.WriteByte('\t')
		}
		b.WriteByte('\n')
	}
	must(t, rows.Err())
	if b.Len() == 0 && table != "beds_lineage" {
		t.Errorf("table %s is empty: the check would prove nothing", table)
	}
	return b.String()
}

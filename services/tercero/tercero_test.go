package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/services/tercero/account"
	"github.com/beds-project/beds/services/tercero/password"
	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/ipl/ipltest"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// testConfig is the env_dev.toml layer the tests add to the repository's
// own: cheap argon2, small attempt limits, a short purge.
const testConfig = `
[tercero]
session_ttl = "1h"
idle_timeout = "10m"
touch = "%s"
purge_interval = "%s"
purge_batch = 2
min_password = 8

[tercero.argon2]
time = 1
memory_kib = 64
threads = 1
concurrent = 2

[tercero.attempts]
account = 3
caller = 5
window = "1h"
`

// configDir holds the repository's beds.toml, and its env_dev.toml (which
// trusts guest as admin) followed by extra.
func configDir(t *testing.T, extra string) string {
	t.Helper()
	root := testenv.Root(t)
	dir := t.TempDir()
	for _, name := range []string{"beds.toml", "env_dev.toml"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "config", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "env_dev.toml" {
			b = append(b, extra...)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// logs is the file a node writes its log to.
type logs struct{ f *os.File }

// String returns what the node logged so far.
func (l *logs) String() string {
	b, _ := os.ReadFile(l.f.Name())
	return string(b)
}

// node is a tercero node of the test with what talks to it.
type node struct {
	c   *client.Client
	db  *sql.DB
	log *logs
	env map[string]string
}

// start boots a tercero node on this test's servers at debug level,
// capturing its log (the IPL's handler writes to os.Stderr as it is at
// boot), and dials it as RabbitMQ user guest, trusted as admin.
func start(t *testing.T, touch, purge string) *node {
	t.Helper()
	env := ipltest.Env(t, map[string]string{
		"BEDS_CONFIG_DIR": configDir(t, fmt.Sprintf(testConfig, touch, purge)),
		"BEDS_NODE_NAME":  "test-tercero",
		"BEDS_LOG_LEVEL":  "debug",
	})
	f, err := os.Create(filepath.Join(t.TempDir(), "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	stderr := os.Stderr
	os.Stderr = f
	ipltest.Start(t, role, env)
	os.Stderr = stderr

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, env["BEDS_AMQP_URL"], client.Options{Name: "tercero-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	db, err := sql.Open("mysql", env["BEDS_MARIADB_DSN"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &node{c: c, db: db, log: &logs{f: f}, env: env}
}

// do sends op with data and returns the reply and its error (nil when ok).
func (n *node) do(t *testing.T, op wire.Op, data any, opts ...client.CallOption) (*wire.Reply, *wire.Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var raw json.RawMessage
	if data != nil {
		var err error
		if raw, err = json.Marshal(data); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := n.c.Do(ctx, &wire.Request{Op: op, Data: raw}, opts...)
	if err != nil {
		we, _ := wire.AsError(err)
		if reply == nil {
			t.Fatalf("%s: %v", op, err)
		}
		return reply, we
	}
	return reply, nil
}

// must is do that fails the test unless the reply is ok.
func (n *node) must(t *testing.T, op wire.Op, data any, opts ...client.CallOption) *wire.Reply {
	t.Helper()
	r, err := n.do(t, op, data, opts...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return r
}

// refused asserts op fails with code.
func (n *node) refused(t *testing.T, code wire.Code, op wire.Op, data any, opts ...client.CallOption) *wire.Error {
	t.Helper()
	_, err := n.do(t, op, data, opts...)
	if err == nil || err.Code != code {
		t.Fatalf("%s: %v, want %s", op, err, code)
	}
	return err
}

// register adds user with password and roles, as guest (a trusted admin).
func (n *node) register(t *testing.T, user, pw string, roles ...string) {
	t.Helper()
	n.must(t, wire.OpRegister, wire.UserData{User: user, Password: pw, Roles: roles})
}

// login logs user in from client and returns the token.
func (n *node) login(t *testing.T, user, pw, from string) string {
	t.Helper()
	r := n.must(t, wire.OpLogin, wire.UserData{User: user, Password: pw, Client: from})
	if r.Identity == nil || len(r.Identity.Token) != 64 {
		t.Fatalf("login %s: identity %+v", user, r.Identity)
	}
	return r.Identity.Token
}

func (n *node) exec(t *testing.T, stmt string, args ...any) {
	t.Helper()
	if _, err := n.db.Exec(stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func (n *node) sessionCount(t *testing.T, user string) int {
	t.Helper()
	var c int
	if err := n.db.QueryRow("SELECT COUNT(*) FROM tbl_ses JOIN tbl_acc ON acc_id = ses_user WHERE acc_name = ?", user).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func as(token string) client.CallOption { return client.WithSession(token) }

// TestTercero runs users and sessions end to end through RabbitMQ on one
// node, then checks that no token is stored and no secret was logged.
func TestTercero(t *testing.T) {
	n := start(t, "1h", "1h")
	var secrets []string // every password and token the test used
	secret := func(s string) string { secrets = append(secrets, s); return s }
	pw := secret("alice-password-1")

	t.Run("register, login, whoami, user", func(t *testing.T) {
		r := n.must(t, wire.OpRegister, wire.UserData{User: "alice", Password: pw, Roles: []string{"member", "buyer"}})
		if r.Key == nil || r.Affected != 1 {
			t.Errorf("register: %+v", r)
		}
		n.refused(t, wire.CodeConflict, wire.OpRegister, wire.UserData{User: "alice", Password: pw, Roles: []string{"member"}})
		n.refused(t, wire.CodeBadValue, wire.OpRegister, wire.UserData{User: "shorty", Password: "short", Roles: []string{"member"}})

		token := secret(n.login(t, "alice", pw, "client-a"))
		who := n.must(t, wire.OpWhoami, nil, as(token)).Identity
		if who == nil || who.Name != "alice" || who.User == 0 || !slices.Equal(who.Roles, []string{"member", "buyer"}) ||
			who.Token != "" || who.Service || who.Session != account.SessionID(token) || time.Until(who.Expires) < 50*time.Minute {
			t.Errorf("whoami: %+v", who)
		}
		u := n.must(t, wire.OpUser, nil, as(token))
		if len(u.Rows) != 1 || u.Rows[0]["name"] != "alice" {
			t.Fatalf("user: %+v", u.Rows)
		}
		keys := make([]string, 0)
		for k := range u.Rows[0] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"changed", "created", "disabled", "id", "name", "roles"}) {
			t.Errorf("user row members %v: want no hash", keys)
		}
		n.register(t, "bob", secret("bob-password-1"), "member")
		n.refused(t, wire.CodeForbidden, wire.OpUser, wire.UserData{User: "bob"}, as(token))
		n.refused(t, wire.CodeForbidden, wire.OpRegister, wire.UserData{User: "eve", Password: "eve-password", Roles: []string{"admin"}}, as(token))
		n.refused(t, wire.CodeForbidden, wire.OpRoles, wire.UserData{User: "alice", Roles: []string{"admin"}}, as(token))
		if r := n.must(t, wire.OpUser, wire.UserData{User: "bob"}); r.Rows[0]["name"] != "bob" { // guest is admin
			t.Errorf("admin reads bob: %+v", r.Rows)
		}
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil)
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(strings.Repeat("0", 64)))
		n.refused(t, wire.CodeUnauthenticated, wire.OpRefresh, nil)
	})

	t.Run("a wrong password and an unknown user answer alike", func(t *testing.T) {
		wrong := n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "alice", Password: "not-her-password", Client: "c-wrong"})
		unknown := n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "nobody", Password: "not-her-password", Client: "c-unknown"})
		if *wrong != *unknown {
			t.Errorf("wrong password %+v, unknown user %+v: want the same answer", wrong, unknown)
		}
		var rows int
		if err := n.db.QueryRow("SELECT COUNT(*) FROM tbl_flr WHERE flr_subject IN ('account:alice', 'caller:c-wrong', 'account:nobody', 'caller:c-unknown')").Scan(&rows); err != nil || rows != 4 {
			t.Errorf("failure rows: %d, %v; want 4", rows, err)
		}
		// Without data client, the caller is the RabbitMQ user.
		n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "nobody2", Password: "whatever-pw"})
		if err := n.db.QueryRow("SELECT COUNT(*) FROM tbl_flr WHERE flr_subject = 'caller:guest'").Scan(&rows); err != nil || rows != 1 {
			t.Errorf("caller:guest rows: %d, %v; want 1", rows, err)
		}
	})

	t.Run("disabled user", func(t *testing.T) {
		dpw := secret("dave-password-1")
		n.register(t, "dave", dpw, "member")
		token := secret(n.login(t, "dave", dpw, "c-dave"))
		n.must(t, wire.OpDisable, wire.UserData{User: "dave"})
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(token))
		if c := n.sessionCount(t, "dave"); c != 0 {
			t.Errorf("dave has %d sessions after disable", c)
		}
		disabled := n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "dave", Password: dpw, Client: "c-dave"})
		wrong := n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "dave", Password: "wrong-password", Client: "c-dave2"})
		if *disabled != *wrong {
			t.Errorf("disabled %+v, wrong password %+v: want the same answer", disabled, wrong)
		}
		n.must(t, wire.OpEnable, wire.UserData{User: "dave"})
		secret(n.login(t, "dave", dpw, "c-dave3"))
	})

	t.Run("passwd revokes the other sessions", func(t *testing.T) {
		old, nw := secret("carol-password-1"), secret("carol-password-2")
		n.register(t, "carol", old, "member")
		t1, t2 := secret(n.login(t, "carol", old, "c-carol")), secret(n.login(t, "carol", old, "c-carol"))
		n.refused(t, wire.CodeUnauthenticated, wire.OpPasswd, wire.UserData{Password: "not-the-password", NewPassword: nw}, as(t1))
		n.refused(t, wire.CodeBadValue, wire.OpPasswd, wire.UserData{Password: old, NewPassword: "short"}, as(t1))
		n.refused(t, wire.CodeForbidden, wire.OpPasswd, wire.UserData{User: "alice", Password: old, NewPassword: nw}, as(t1))
		n.must(t, wire.OpPasswd, wire.UserData{Password: old, NewPassword: nw}, as(t1))
		n.must(t, wire.OpWhoami, nil, as(t1))
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t2))
		n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "carol", Password: old, Client: "c-carol2"})
		secret(n.login(t, "carol", nw, "c-carol3"))
		// An admin sets a password without the current one.
		reset := secret("carol-password-3")
		n.must(t, wire.OpPasswd, wire.UserData{User: "carol", NewPassword: reset})
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t1))
		secret(n.login(t, "carol", reset, "c-carol4"))
	})

	t.Run("sessions, refresh, logout, revoke", func(t *testing.T) {
		epw := secret("erin-password-1")
		n.register(t, "erin", epw, "member")
		t1, t2, t3 := secret(n.login(t, "erin", epw, "c-erin")), secret(n.login(t, "erin", epw, "c-erin")), secret(n.login(t, "erin", epw, "c-erin"))
		list := n.must(t, wire.OpSessions, nil, as(t1))
		if len(list.Rows) != 3 {
			t.Fatalf("sessions: %+v", list.Rows)
		}
		var ids []string
		for _, r := range list.Rows {
			if len(r) != 4 || r["created"] == nil || r["seen"] == nil || r["expires"] == nil {
				t.Errorf("session row %v: want id, created, seen, expires", r)
			}
			ids = append(ids, r["id"].(string))
		}
		for _, tok := range []string{t1, t2, t3} {
			if !slices.Contains(ids, account.SessionID(tok)) || slices.Contains(ids, tok) {
				t.Errorf("sessions %v: want the SHA-256 of each token, never a token", ids)
			}
		}
		n.refused(t, wire.CodeForbidden, wire.OpSessions, wire.UserData{User: "alice"}, as(t1))
		if r := n.must(t, wire.OpSessions, wire.UserData{User: "erin"}); len(r.Rows) != 3 {
			t.Errorf("admin lists erin's sessions: %d", len(r.Rows))
		}

		// Resolving a session leaves its idle timer alone within touch
		// (1h here); refresh restarts it.
		n.exec(t, "UPDATE tbl_ses SET ses_seen = UTC_TIMESTAMP(6) - INTERVAL 5 MINUTE WHERE ses_id = ?", account.SessionID(t1))
		n.must(t, wire.OpWhoami, nil, as(t1))
		if seenRecently(t, n, t1) {
			t.Error("whoami rewrote seen within touch")
		}
		n.must(t, wire.OpRefresh, nil, as(t1))
		if !seenRecently(t, n, t1) {
			t.Error("seen not restarted by refresh")
		}

		// logout: one's own session; another's is not found.
		n.refused(t, wire.CodeNotFound, wire.OpLogout, wire.UserData{Session: account.SessionID(t2)}, as(secret(n.login(t, "alice", pw, "c-alice"))))
		n.must(t, wire.OpLogout, nil, as(t1))
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t1))
		n.must(t, wire.OpLogout, wire.UserData{Session: account.SessionID(t2)}, as(t3))
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t2))
		n.must(t, wire.OpWhoami, nil, as(t3))
		t6 := secret(n.login(t, "erin", epw, "c-erin"))
		n.must(t, wire.OpLogout, wire.UserData{Session: account.SessionID(t6)}) // guest is admin
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t6))
		n.refused(t, wire.CodeBadRequest, wire.OpLogout, nil) // a service has no session of its own

		// revoke: every session of the user.
		t4 := secret(n.login(t, "erin", epw, "c-erin"))
		if r := n.must(t, wire.OpRevoke, nil, as(t3)); r.Affected != 2 {
			t.Errorf("revoke: affected %d, want 2", r.Affected)
		}
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t3))
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t4))
		t5 := secret(n.login(t, "erin", epw, "c-erin"))
		n.must(t, wire.OpRevoke, wire.UserData{User: "erin"}) // admin
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t5))
	})

	t.Run("expired and idle sessions are refused", func(t *testing.T) {
		t1, t2 := secret(n.login(t, "alice", pw, "c-alice")), secret(n.login(t, "alice", pw, "c-alice"))
		n.must(t, wire.OpWhoami, nil, as(t1))
		n.exec(t, "UPDATE tbl_ses SET ses_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE ses_id = ?", account.SessionID(t1))
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t1))
		n.refused(t, wire.CodeUnauthenticated, wire.OpRefresh, nil, as(t1))
		n.exec(t, "UPDATE tbl_ses SET ses_seen = UTC_TIMESTAMP(6) - INTERVAL 11 MINUTE WHERE ses_id = ?", account.SessionID(t2))
		n.refused(t, wire.CodeUnauthenticated, wire.OpWhoami, nil, as(t2))
		if r := n.must(t, wire.OpSessions, wire.UserData{User: "alice"}); slices.ContainsFunc(r.Rows, func(r wire.Row) bool {
			return r["id"] == account.SessionID(t1) || r["id"] == account.SessionID(t2)
		}) {
			t.Errorf("sessions lists ended sessions: %v", r.Rows)
		}
	})

	t.Run("rate limited per account", func(t *testing.T) {
		fpw := secret("frank-password-1")
		n.register(t, "frank", fpw, "member")
		for i := range 3 {
			n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "frank", Password: "guess-" + fmt.Sprint(i), Client: fmt.Sprint("c-frank-", i)})
		}
		err := n.refused(t, wire.CodeRateLimited, wire.OpLogin, wire.UserData{User: "frank", Password: fpw, Client: "c-frank-ok"})
		if !strings.Contains(err.Message, "account") || !strings.Contains(err.Message, "try again after") {
			t.Errorf("rate limited: %q", err.Message)
		}
		if !strings.Contains(n.log.String(), "account:frank") {
			t.Error("the account limit was not logged with its subject")
		}
	})

	t.Run("rate limited per caller", func(t *testing.T) {
		for i := range 5 {
			n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: fmt.Sprint("ghost", i), Password: "guess-pw", Client: "c-evil"})
		}
		err := n.refused(t, wire.CodeRateLimited, wire.OpLogin, wire.UserData{User: "alice", Password: pw, Client: "c-evil"})
		if !strings.Contains(err.Message, "caller") {
			t.Errorf("rate limited: %q", err.Message)
		}
		secret(n.login(t, "alice", pw, "c-elsewhere")) // the account itself is fine
		if !strings.Contains(n.log.String(), "caller:c-evil") {
			t.Error("the caller limit was not logged with its subject")
		}
	})

	t.Run("rehash on changed parameters", func(t *testing.T) {
		gpw := secret("grace-password-1")
		n.register(t, "grace", gpw, "member")
		older, err := password.New(password.Params{Time: 2, MemoryKiB: 128, Threads: 2}, 1)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := older.Hash(context.Background(), gpw)
		if err != nil {
			t.Fatal(err)
		}
		n.exec(t, "UPDATE tbl_acc SET acc_hash = ? WHERE acc_name = 'grace'", enc)
		secret(n.login(t, "grace", gpw, "c-grace"))
		var stored string
		if err := n.db.QueryRow("SELECT acc_hash FROM tbl_acc WHERE acc_name = 'grace'").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored == enc || !strings.HasPrefix(stored, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Errorf("stored hash after login: %.30s..., want one with the configured parameters", stored)
		}
		secret(n.login(t, "grace", gpw, "c-grace"))
		// A tampered hash refuses the login, like a wrong password.
		n.exec(t, "UPDATE tbl_acc SET acc_hash = 'tampered' WHERE acc_name = 'grace'")
		n.refused(t, wire.CodeUnauthenticated, wire.OpLogin, wire.UserData{User: "grace", Password: gpw, Client: "c-grace"})
	})

	t.Run("a redelivered login makes a fresh session", func(t *testing.T) {
		hpw := secret("heidi-password-1")
		n.register(t, "heidi", hpw, "member")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		data, _ := json.Marshal(wire.UserData{User: "heidi", Password: hpw, Client: "c-heidi"})
		event := n.c.NewEvent()
		var tokens []string
		for range 2 {
			r, err := n.c.Send(ctx, event, &wire.Request{Op: wire.OpLogin, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, secret(r.Identity.Token))
		}
		if tokens[0] == tokens[1] {
			t.Fatal("a login sent twice answered one token twice")
		}
		for _, tok := range tokens {
			n.must(t, wire.OpWhoami, nil, as(tok))
		}
		if c := n.sessionCount(t, "heidi"); c != 2 {
			t.Errorf("heidi has %d sessions, want 2", c)
		}
	})

	t.Run("data ops are refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, body := range []string{`{"op":"read","template":"users"}`, `{"op":"create","template":"accounts","data":{"name":"x"}}`, `{"op":"ping"}`} {
			_, err := n.c.DoRaw(ctx, "usr.register", []byte(body))
			we, _ := wire.AsError(err)
			if we == nil || we.Code != wire.CodeBadRequest || !strings.Contains(we.Message, "routing key rec.") {
				t.Errorf("%s: %v, want bad_request naming the routing key", body, err)
			}
		}
	})

	t.Run("hostile inputs", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, tc := range []struct {
			body string
			code wire.Code
		}{
			{`{"op":"login","data":{"user":"alice","password":"x","extra":1}}`, wire.CodeBadField},
			{`{"op":"login","data":{"user":5,"password":"x"}}`, wire.CodeBadValue},
			{`{"op":"login","data":{"user":"alice","password":["x"]}}`, wire.CodeBadValue},
			{`{"op":"login","data":"alice"}`, wire.CodeBadRequest},
			{`{"op":"login","data":[1,2]}`, wire.CodeBadRequest},
			{`{"op":"login","data":{"user":"` + strings.Repeat("a", 65) + `","password":"x"}}`, wire.CodeBadValue},
			{`{"op":"login","data":{"user":"alice","password":"` + strings.Repeat("p", 2000) + `"}}`, wire.CodeTooLarge},
			{`{"op":"login","data":{"user":"alice","password":"` + strings.Repeat("p", 9000) + `"}}`, wire.CodeTooLarge},
			{`{"op":"login","data":{"user":"al\u0000ice","password":"x"}}`, wire.CodeBadValue},
			{`{"op":"login","data":{"user":"alice","password":"x","client":"` + strings.Repeat("c", 200) + `"}}`, wire.CodeBadValue},
			{`{"op":"register","data":{"user":"zed","password":"zed-password","roles":["Admin"]}}`, wire.CodeBadValue},
			{`{"op":"register","data":{"user":"zed","password":"zed-password","roles":[]}}`, wire.CodeBadValue},
			{`{"op":"register","data":{"user":"zed","password":"zed-password","roles":"admin"}}`, wire.CodeBadValue},
			{`{"op":"logout","data":{"session":"not-an-id"}}`, wire.CodeBadValue},
			{`{"op":"whoami","filter":{"id":1}}`, wire.CodeBadRequest},
			{`{"op":"whoami","limit":5}`, wire.CodeBadRequest},
			{`{"op":"whoami","template":"sessions"}`, wire.CodeBadRequest},
			{`{"op":"login","data":{"user":"alice","password":"x"} }x`, wire.CodeBadRequest},
			{`{"op":"login","data":{"user":"alice","password":"x"},"data":7}`, wire.CodeBadRequest},
		} {
			_, err := n.c.DoRaw(ctx, "ses.login", []byte(tc.body))
			we, _ := wire.AsError(err)
			if we == nil || we.Code != tc.code {
				t.Errorf("%.80s: %v, want %s", tc.body, err, tc.code)
			}
			if we != nil && strings.Contains(we.Message, strings.Repeat("p", 50)) {
				t.Errorf("%.80s: the error quotes the password", tc.body)
			}
		}
		_, err := n.c.DoRaw(ctx, "ses.whoami", []byte(`{"op":"whoami"}`), client.WithSession(strings.Repeat("t", 256)))
		if we, _ := wire.AsError(err); we == nil || we.Code != wire.CodeUnauthenticated {
			t.Errorf("a long unknown token: %v", err)
		}
		n.must(t, wire.OpUser, wire.UserData{User: "alice"}) // still serving
	})

	t.Run("no token in the database, no secret in the log", func(t *testing.T) {
		for _, table := range []string{"tbl_ses", "tbl_flr", "tbl_acc", "beds_events"} {
			dump := dumpTable(t, n.db, table)
			if dump == "" && table != "tbl_flr" {
				t.Errorf("%s is empty", table)
			}
			for _, s := range secrets {
				if strings.Contains(dump, s) {
					t.Errorf("%s holds a password or token (%.6s...)", table, s)
				}
			}
		}
		log := n.log.String()
		if !strings.Contains(log, "login") || !strings.Contains(log, "level=DEBUG") && !strings.Contains(log, `"level":"DEBUG"`) {
			t.Fatalf("the captured log holds no debug lines: %.300s", log)
		}
		for _, s := range secrets {
			if strings.Contains(log, s) {
				t.Errorf("the log holds a password or token (%.6s...)", s)
			}
		}
		if strings.Contains(log, "$argon2id$") {
			t.Error("the log holds a password hash")
		}
	})
}

// seenRecently reports whether the session of token was seen within the
// last minute.
func seenRecently(t *testing.T, n *node, token string) bool {
	t.Helper()
	var recent bool
	if err := n.db.QueryRow("SELECT ses_seen > UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE FROM tbl_ses WHERE ses_id = ?", account.SessionID(token)).Scan(&recent); err != nil {
		t.Fatal(err)
	}
	return recent
}

// Past touch, resolving a session restarts its idle timer, under the
// request's child event 1.
func TestTouch(t *testing.T) {
	n := start(t, "0s", "1h")
	pw := "judy-password-1"
	n.register(t, "judy", pw, "member")
	token := n.login(t, "judy", pw, "c-judy")
	n.exec(t, "UPDATE tbl_ses SET ses_seen = UTC_TIMESTAMP(6) - INTERVAL 5 MINUTE WHERE ses_id = ?", account.SessionID(token))
	r := n.must(t, wire.OpWhoami, nil, as(token))
	if !seenRecently(t, n, token) {
		t.Error("whoami past touch left seen alone")
	}
	var op string
	if err := n.db.QueryRow("SELECT evt_op FROM beds_events WHERE evt_id = ?", r.Event+".1").Scan(&op); err != nil || op != "update" {
		t.Errorf("the touch's event %s.1: %q, %v; want an update", r.Event, op, err)
	}
}

// dumpTable returns every value of every row of table, as text.
func dumpTable(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			b.Write(v)
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// The purge deletes ended sessions, expired or idle, in batches of
// purge_batch, each delete its own event, and leaves open ones.
func TestPurge(t *testing.T) {
	n := start(t, "1h", "100ms")
	pw := "ivan-password-1"
	n.register(t, "ivan", pw, "member")
	var tokens []string
	for range 6 {
		tokens = append(tokens, n.login(t, "ivan", pw, "c-ivan"))
	}
	keep := tokens[5]
	// Failed logins past the attempts window (1h) go too, the recent ones stay.
	for _, age := range []string{"2 HOUR", "3 HOUR", "90 MINUTE", "5 MINUTE"} {
		n.exec(t, "INSERT INTO tbl_flr (flr_subject, flr_at) VALUES ('account:purged', UTC_TIMESTAMP(6) - INTERVAL "+age+")")
	}
	for i, tok := range tokens[:5] {
		col := "ses_expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"
		if i%2 == 1 {
			col = "ses_seen = UTC_TIMESTAMP(6) - INTERVAL 11 MINUTE"
		}
		n.exec(t, "UPDATE tbl_ses SET "+col+" WHERE ses_id = ?", account.SessionID(tok))
	}
	deadline := time.Now().Add(30 * time.Second)
	for n.sessionCount(t, "ivan") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("ended sessions not purged within 30s: %d left", n.sessionCount(t, "ivan"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.must(t, wire.OpWhoami, nil, as(keep))
	for {
		var left int
		if err := n.db.QueryRow("SELECT COUNT(*) FROM tbl_flr WHERE flr_subject = 'account:purged'").Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 1 {
			break
		}
		if left < 1 || time.Now().After(deadline) {
			t.Fatalf("%d failures left, want the one within the window", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows, err := n.db.Query("SELECT evt_affected FROM beds_events WHERE evt_template = 'sessions' AND evt_op = 'delete' AND evt_id NOT LIKE '%.%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var batches, total int64
	for rows.Next() {
		var a int64
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		if a > 2 {
			t.Errorf("a purge delete removed %d sessions, more than purge_batch 2", a)
		}
		batches, total = batches+1, total+a
	}
	if total != 5 || batches < 3 {
		t.Errorf("purge: %d deletes removing %d sessions, want at least 3 removing 5", batches, total)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// TestMain keeps the tests off the session of whoever runs them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bedsctl-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv(envSessionFile, filepath.Join(dir, "none", "session"))
	os.Unsetenv(envSession)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// fakeTercero consumes beds.tercero of the vhost at url and answers like
// tercero: login accepts ann with password "pw-Kx81" and answers the token
// "secret-token-<event>"; the session token "gone" has ended;
// "admin-token" is root's, an admin's; without a token the caller is the
// service its RabbitMQ user is trusted as (admin); user "taken" exists.
// It sends every request it took on the returned channel first.
func fakeTercero(t *testing.T, url string) <-chan amqp.Delivery {
	t.Helper()
	return testenv.Responder{Queue: wire.TerceroQueue, Keep: 16, Answer: terceroReply}.Start(t, url)
}

func terceroReply(d amqp.Delivery) *wire.Reply {
	event := d.MessageId
	fail := func(code wire.Code, msg string) *wire.Reply {
		return wire.ErrorReply(event, wire.Errorf(code, "%s", msg))
	}
	req, err := wire.DecodeRequest(d.Body)
	if err != nil {
		we, _ := wire.AsError(err)
		return wire.ErrorReply(event, we)
	}
	var data wire.UserData
	if req.Data != nil {
		if err := json.Unmarshal(req.Data, &data); err != nil {
			return fail(wire.CodeBadRequest, err.Error())
		}
	}
	token, _ := d.Headers[wire.HeaderSession].(string)
	if token == "gone" {
		return fail(wire.CodeUnauthenticated, "the session has ended")
	}
	caller := &wire.Identity{Name: d.UserId, Roles: []string{wire.RoleAdmin}, Service: true}
	switch token {
	case "":
	case "admin-token":
		caller = &wire.Identity{User: 1, Name: "root", Roles: []string{wire.RoleAdmin}, Session: sessionID(token), Expires: time.Now().Add(time.Hour)}
	default:
		caller = &wire.Identity{User: 7, Name: "ann", Roles: []string{"member"}, Session: sessionID(token), Expires: time.Now().Add(time.Hour)}
	}
	reply := &wire.Reply{OK: true, Event: event, Node: "fake-tercero"}
	switch req.Op {
	case wire.OpLogin:
		if data.User != "ann" || data.Password != "pw-Kx81" {
			return fail(wire.CodeUnauthenticated, "wrong user or password")
		}
		tok := "secret-token-" + event
		reply.Identity = &wire.Identity{User: 7, Name: "ann", Roles: []string{"member"}, Session: sessionID(tok),
			Expires: time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC), Token: tok}
	case wire.OpWhoami:
		reply.Identity = caller
	case wire.OpSessions:
		reply.Rows = []wire.Row{
			{"id": sessionID(token), "created": "2026-11-27T10:00:00Z", "seen": "2026-11-27T11:00:00Z", "expires": "2026-11-28T10:00:00Z"},
			{"id": "0123", "created": "2026-11-26T10:00:00Z", "seen": nil, "expires": "2026-11-27T10:00:00Z"},
		}
	case wire.OpRevoke:
		reply.Affected = 3
	case wire.OpUser:
		if token == "" && data.User == "" {
			return fail(wire.CodeUnauthenticated, "a service is no user: name one")
		}
		name := data.User
		if name == "" {
			name = caller.Name
		}
		reply.Rows = []wire.Row{{"id": 8, "name": name, "roles": []string{"member", "clerk"}, "disabled": false, "note": "x\x1b[2Jy"}}
	case wire.OpRegister:
		if data.User == "taken" {
			return fail(wire.CodeConflict, "user taken exists")
		}
		reply.Affected = 1
	default:
		reply.Affected = 1
	}
	return reply
}

// sent is one request a fake server got: its routing key, op, data and
// session header.
type sent struct {
	key     string
	op      wire.Op
	data    wire.UserData
	session string
}

func takeSent(t *testing.T, ch <-chan amqp.Delivery) sent {
	t.Helper()
	select {
	case d := <-ch:
		req, err := wire.DecodeRequest(d.Body)
		if err != nil {
			t.Fatalf("undecodable request %s: %v", d.Body, err)
		}
		s := sent{key: d.RoutingKey, op: req.Op}
		if req.Data != nil && req.Op.Tercero() {
			if err := json.Unmarshal(req.Data, &s.data); err != nil {
				t.Fatalf("data %s: %v", req.Data, err)
			}
		}
		s.session, _ = d.Headers[wire.HeaderSession].(string)
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the fake server got nothing")
		return sent{}
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestSessionCommands runs login, the commands that send the stored
// session, the user commands and logout against a fake tercero and a
// fake node: what each sends, what it prints, its exit code, and the
// session file. No output ever holds a token or a password.
func TestSessionCommands(t *testing.T) {
	url := testenv.AMQP(t)
	ter := fakeTercero(t, url)
	node := fakeNode(t, url)
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "session")
	t.Setenv(envSessionFile, path)

	var all strings.Builder // every output, checked for secrets at the end
	exec := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(args, "--url", url, "--timeout", "10s"), strings.NewReader(stdin), &out, &errOut)
		all.WriteString(out.String() + errOut.String())
		return code, out.String(), errOut.String()
	}
	expect := func(ch <-chan amqp.Delivery, want sent) {
		t.Helper()
		if got := takeSent(t, ch); !reflect.DeepEqual(got, want) {
			t.Errorf("sent %+v, want %+v", got, want)
		}
	}
	var tokens []string

	// A wrong password: exit 1, no session file.
	code, _, errOut := exec("wrong-pw\n", "login", "ann", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "unauthenticated: wrong user or password") {
		t.Fatalf("wrong password: exit %d, stderr %q", code, errOut)
	}
	expect(ter, sent{key: "ses.login", op: wire.OpLogin, data: wire.UserData{User: "ann", Password: "wrong-pw"}})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a failed login left a session file: %v", err)
	}

	// Login: the token goes to the session file, 0600 in folders created
	// 0700, and is never printed.
	code, out, errOut := exec("pw-Kx81\n", "login", "ann", "--password-stdin")
	if code != 0 || !strings.Contains(out, "logged in as ann (user 7, roles member)") ||
		!strings.Contains(out, "session expires 2030-01-0") || !strings.Contains(out, "kept in "+path) {
		t.Fatalf("login: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	d := takeSent(t, ter)
	if d.key != "ses.login" || d.session != "" || !reflect.DeepEqual(d.data, wire.UserData{User: "ann", Password: "pw-Kx81"}) {
		t.Fatalf("login sent %+v", d)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "secret-token-") {
		t.Fatalf("session file %q, %v", b, err)
	}
	token := strings.TrimSpace(string(b))
	tokens = append(tokens, token)
	if m := mode(t, path); m != 0o600 {
		t.Errorf("session file mode %04o, want 0600", m)
	}
	for _, p := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		if m := mode(t, p); m != 0o700 {
			t.Errorf("folder %s mode %04o, want 0700", p, m)
		}
	}

	// Commands that send the stored session.
	root := "01JDQ3V0Z8K4M6T2X9B7C5N1PA"
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		out   []string
		ch    <-chan amqp.Delivery
		sent  []sent
	}{
		{args: []string{"whoami"}, out: []string{"name:     ann", "user:     7", "roles:    member", "session:  " + sessionID(token)},
			ch: ter, sent: []sent{{key: "ses.whoami", op: wire.OpWhoami, session: token}}},
		{args: []string{"call", "users", "read"}, out: []string{`"ok": true`},
			ch: node, sent: []sent{{key: wire.RouteRead, op: wire.OpRead, session: token}}},
		{args: []string{"batch", "-"}, stdin: `[{"template":"users","op":"create","data":{"a":1}}]`, out: []string{`"items"`},
			ch: node, sent: []sent{{key: wire.RouteWrite, op: wire.OpBatch, session: token}}},
		{args: []string{"lineage", root}, out: []string{root + "  read users"},
			ch: node, sent: []sent{{key: wire.RouteRead, op: wire.OpLineage, session: token}}},
		{args: []string{"sessions"}, out: []string{"*  " + sessionID(token) + "  2026-11-27T10:00:00Z", "\n   0123  "},
			ch: ter, sent: []sent{{key: "ses.sessions", op: wire.OpSessions, session: token}}},
		{args: []string{"sessions", "bob", "--json"}, out: []string{`"id": "0123"`},
			ch: ter, sent: []sent{{key: "ses.sessions", op: wire.OpSessions, data: wire.UserData{User: "bob"}, session: token}}},
		{args: []string{"revoke", "bob"}, out: []string{"ended 3 sessions of bob"},
			ch: ter, sent: []sent{{key: "ses.revoke", op: wire.OpRevoke, data: wire.UserData{User: "bob"}, session: token}}},
		{args: []string{"user", "add", "bob", "--roles", "member, clerk", "--password-stdin"}, stdin: "pw-bob1\n",
			out: []string{"added user bob (roles member,clerk)"},
			ch:  ter, sent: []sent{{key: "usr.register", op: wire.OpRegister, data: wire.UserData{User: "bob", Password: "pw-bob1", Roles: []string{"member", "clerk"}}, session: token}}},
		{args: []string{"user", "add", "taken", "--password-stdin"}, stdin: "pw-bob1\n", code: 1,
			ch: ter, sent: []sent{{key: "usr.register", op: wire.OpRegister, data: wire.UserData{User: "taken", Password: "pw-bob1"}, session: token}}},
		// Not an admin: the current password, then the new one.
		{args: []string{"user", "passwd", "--password-stdin"}, stdin: "pw-Kx81\npw-new2\n",
			out: []string{"changed the password of ann"},
			ch:  ter, sent: []sent{{key: "ses.whoami", op: wire.OpWhoami, session: token},
				{key: "usr.passwd", op: wire.OpPasswd, data: wire.UserData{User: "ann", Password: "pw-Kx81", NewPassword: "pw-new2"}, session: token}}},
		{args: []string{"user", "roles", "bob", "clerk"}, out: []string{"bob now has roles clerk"},
			ch: ter, sent: []sent{{key: "usr.roles", op: wire.OpRoles, data: wire.UserData{User: "bob", Roles: []string{"clerk"}}, session: token}}},
		{args: []string{"user", "disable", "bob"}, out: []string{"disabled bob"},
			ch: ter, sent: []sent{{key: "usr.disable", op: wire.OpDisable, data: wire.UserData{User: "bob"}, session: token}}},
		{args: []string{"user", "enable", "bob"}, out: []string{"enabled bob"},
			ch: ter, sent: []sent{{key: "usr.enable", op: wire.OpEnable, data: wire.UserData{User: "bob"}, session: token}}},
		{args: []string{"user", "show", "bob"}, out: []string{"id:        8\nname:      bob\nroles:     member,clerk\ndisabled:  false\nnote:      \"x\\x1b[2Jy\"\n"},
			ch: ter, sent: []sent{{key: "usr.user", op: wire.OpUser, data: wire.UserData{User: "bob"}, session: token}}},
		{args: []string{"user", "show"}, out: []string{"name:      ann"},
			ch: ter, sent: []sent{{key: "usr.user", op: wire.OpUser, session: token}}},
	} {
		code, out, errOut := exec(tc.stdin, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\nstdout %q\nstderr %q", tc.args, code, tc.code, out, errOut)
		}
		for _, s := range tc.out {
			if !strings.Contains(out, s) {
				t.Errorf("%v: stdout lacks %q:\n%s", tc.args, s, out)
			}
		}
		for _, want := range tc.sent {
			expect(tc.ch, want)
		}
	}

	// BEDS_SESSION overrides the file; an admin changes a password
	// without the current one.
	t.Setenv(envSession, "admin-token")
	if code, out, _ := exec("pw-new3\n", "user", "passwd", "bob", "--password-stdin"); code != 0 || !strings.Contains(out, "changed the password of bob") {
		t.Errorf("admin passwd: exit %d, %q", code, out)
	}
	expect(ter, sent{key: "ses.whoami", op: wire.OpWhoami, session: "admin-token"})
	expect(ter, sent{key: "usr.passwd", op: wire.OpPasswd, data: wire.UserData{User: "bob", NewPassword: "pw-new3"}, session: "admin-token"})
	t.Setenv(envSession, "")

	// Logout ends the session and removes the file; a second one has
	// nothing to end.
	if code, out, errOut := exec("", "logout"); code != 0 || out != "logged out; removed "+path+"\n" {
		t.Errorf("logout: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	expect(ter, sent{key: "ses.logout", op: wire.OpLogout, session: token})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("logout left the session file: %v", err)
	}
	if code, _, errOut := exec("", "logout"); code != 1 || !strings.Contains(errOut, "not logged in: no session file at "+path) {
		t.Errorf("logout without a session: exit %d, stderr %q", code, errOut)
	}

	// Without a session: no header, and the trusted service has no
	// password of its own.
	if code, out, _ := exec("", "whoami"); code != 0 || !strings.Contains(out, "service:  trusted by its RabbitMQ user") {
		t.Errorf("whoami as a service: exit %d, %q", code, out)
	}
	expect(ter, sent{key: "ses.whoami", op: wire.OpWhoami})
	if code, _, errOut := exec("pw-new4\n", "user", "passwd", "--password-stdin"); code != 2 || !strings.Contains(errOut, "has no password: name the user") {
		t.Errorf("passwd as a service: exit %d, stderr %q", code, errOut)
	}
	expect(ter, sent{key: "ses.whoami", op: wire.OpWhoami})
	if code, _, errOut := exec("", "user", "show"); code != 1 || !strings.Contains(errOut, "bedsctl: no session: log in with bedsctl login USER") {
		t.Errorf("user show without a session: exit %d, stderr %q", code, errOut)
	}
	expect(ter, sent{key: "usr.user", op: wire.OpUser})
	if code, _, _ := exec("", "call", "users", "count"); code != 0 {
		t.Errorf("call without a session: exit %d", code)
	}
	expect(node, sent{key: wire.RouteRead, op: wire.OpCount})

	// A session tercero no longer knows: commands say to log in again,
	// and logout removes the file all the same.
	if err := saveSession(path, "gone"); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := exec("", "whoami"); code != 1 || !strings.Contains(errOut, "the session in "+path+" has ended or is unknown: log in again") {
		t.Errorf("whoami with an ended session: exit %d, stderr %q", code, errOut)
	}
	expect(ter, sent{key: "ses.whoami", op: wire.OpWhoami, session: "gone"})
	if code, out, _ := exec("", "logout"); code != 0 || out != "the session had ended already; removed "+path+"\n" {
		t.Errorf("logout of an ended session: exit %d, %q", code, out)
	}
	expect(ter, sent{key: "ses.logout", op: wire.OpLogout, session: "gone"})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("logout of an ended session left the file: %v", err)
	}

	// Revoking one's own sessions removes the file too.
	if code, _, _ := exec("pw-Kx81\n", "login", "ann", "--password-stdin"); code != 0 {
		t.Fatal("second login failed")
	}
	takeSent(t, ter)
	b, _ = os.ReadFile(path)
	tokens = append(tokens, strings.TrimSpace(string(b)))
	if code, out, _ := exec("", "revoke"); code != 0 || !strings.Contains(out, "ended 3 of your sessions\nremoved "+path) {
		t.Errorf("revoke: exit %d, %q", code, out)
	}
	expect(ter, sent{key: "ses.revoke", op: wire.OpRevoke, session: tokens[1]})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("revoke left the session file: %v", err)
	}

	for _, secret := range append(tokens, "pw-Kx81", "wrong-pw", "pw-bob1", "pw-new2", "pw-new3", "pw-new4", "secret-token") {
		if strings.Contains(all.String(), secret) {
			t.Errorf("an output holds the secret %q:\n%s", secret, all.String())
		}
	}
}

// TestSessionFile: where the session file is, its modes, and what
// loadSession makes of it.
func TestSessionFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv(envSessionFile, "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("HOME", home)
	path, err := sessionPath()
	if want := filepath.Join(home, "config", "beds", "session"); err != nil || path != want {
		t.Fatalf("session path %q (%v), want %q", path, err, want)
	}
	var stderr bytes.Buffer
	if s, err := loadSession(&stderr); err != nil || s.token != "" {
		t.Fatalf("no file: %+v, %v", s, err)
	}
	if err := saveSession(path, "tok-1"); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("folder mode %04o, want 0700", m)
	}
	if m := mode(t, filepath.Join(home, "config")); m != 0o700 {
		t.Errorf("created config folder mode %04o, want 0700", m)
	}
	// Saving again replaces the token, still 0600, and leaves no
	// temporary file.
	if err := saveSession(path, "tok-2"); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("file mode %04o, want 0600", m)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("the folder holds %d files, want the session file alone", len(entries))
	}
	if s, err := loadSession(&stderr); err != nil || s.token != "tok-2" || s.path != path || stderr.Len() != 0 {
		t.Fatalf("load: %+v, %v, stderr %q", s, err, stderr.String())
	}
	// BEDS_SESSION wins over the file.
	t.Setenv(envSession, " tok-env\n")
	if s, err := loadSession(&stderr); err != nil || s.token != "tok-env" || s.path != "" || s.from() != envSession {
		t.Fatalf("load with %s: %+v, %v", envSession, s, err)
	}
	t.Setenv(envSession, "")
	// A file others may read is used, with a warning that does not show
	// the token.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := loadSession(&stderr); err != nil || s.token != "tok-2" ||
		!strings.Contains(stderr.String(), "others may read the session file "+path+" (mode 0644)") || strings.Contains(stderr.String(), "tok-2") {
		t.Fatalf("load of a 0644 file: %+v, %v, stderr %q", s, err, stderr.String())
	}
	// An empty file is refused.
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSession(&stderr); err == nil || !strings.Contains(err.Error(), "does not hold a session token") {
		t.Fatalf("empty file: %v", err)
	}
	// Removing twice is fine.
	if err := removeSession(path); err != nil {
		t.Fatal(err)
	}
	if err := removeSession(path); err != nil {
		t.Fatal(err)
	}
	// $BEDS_SESSION_FILE names the file.
	t.Setenv(envSessionFile, filepath.Join(home, "elsewhere"))
	if p, err := sessionPath(); err != nil || p != filepath.Join(home, "elsewhere") {
		t.Fatalf("path with %s: %q, %v", envSessionFile, p, err)
	}
}

// The session and user commands refuse bad usage with exit 2 before
// dialing (the URL names a closed port), with one message saying why.
func TestUserRefusals(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"login"}, "", "bedsctl: login takes one user name, got 0"},
		{[]string{"login", "a", "b"}, "", "got 2"},
		{[]string{"login", ""}, "", "an argument is empty"},
		{[]string{"login", "ann"}, "pw\n", "stdin is not a terminal to read the password from: pipe it in with --password-stdin"},
		{[]string{"login", "ann", "--password-stdin"}, "", "stdin ended before the password"},
		{[]string{"login", "ann", "--password-stdin"}, "\n", "password for ann is empty"},
		{[]string{"login", "ann", "--password-stdin"}, strings.Repeat("x", maxSecret+1), "longer than 4096 bytes"},
		{[]string{"login", "ann", "--nope"}, "", "flag provided but not defined: -nope"},
		{[]string{"logout", "x"}, "", "logout takes no arguments, got 1"},
		{[]string{"whoami", "x"}, "", "whoami takes no arguments"},
		{[]string{"sessions", "a", "b"}, "", "sessions takes at most one user name, got 2"},
		{[]string{"revoke", "a", "b"}, "", "revoke takes at most one user name, got 2"},
		{[]string{"user", "nope"}, "", `unknown user command "nope"`},
		{[]string{"user", "add"}, "", "user add takes one user name, got 0"},
		{[]string{"user", "add", "bob", "--roles", "a"}, "pw\n", "stdin is not a terminal"},
		{[]string{"user", "add", "bob", "--password-stdin"}, "\r\n", "password for bob is empty"},
		{[]string{"user", "passwd", "a", "b"}, "", "user passwd takes at most one user name, got 2"},
		{[]string{"user", "disable"}, "", "user disable takes one user name"},
		{[]string{"user", "enable", "a", "b"}, "", "user enable takes one user name"},
		{[]string{"user", "roles", "bob"}, "", "user roles takes a user name and a comma-separated list of roles, got 1"},
		{[]string{"user", "roles", "bob", " , "}, "", "give at least one role"},
		{[]string{"user", "show", "a", "b"}, "", "user show takes at most one user name"},
		{[]string{"user", "disable", "bob", "--password-stdin"}, "", "flag provided but not defined: -password-stdin"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(tc.args, "--url", "amqp://guest:guest@127.0.0.1:1/"), strings.NewReader(tc.stdin), &out, &errOut)
		if code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d (want 2), stdout %q, stderr lacks %q:\n%s", tc.args, code, out.String(), tc.want, errOut.String())
		}
		if strings.Count(errOut.String(), "bedsctl: ") > 1 {
			t.Errorf("%v: more than one message:\n%s", tc.args, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"user"}, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "bedsctl user add NAME") {
		t.Errorf("user alone: exit %d, stderr %q", code, errOut.String())
	}
	if code := run(context.Background(), []string{"user", "help"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "bedsctl user roles NAME a,b") {
		t.Errorf("user help: exit %d, stdout %q", code, out.String())
	}
}

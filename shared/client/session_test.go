package client_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// The fake tercero's fixed answers.
var (
	annExpires = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	annSession = strings.Repeat("ab", 32)
)

// fakeTercero consumes beds.tercero of the vhost at url as tercero would
// and answers each request from its op, data and session header (see
// terceroAnswer). Every delivery it took is sent on the returned channel
// before it is answered. It stops when the test ends.
func fakeTercero(t *testing.T, url string) <-chan amqp.Delivery {
	t.Helper()
	return testenv.Responder{Queue: wire.TerceroQueue, Keep: 64, Answer: terceroAnswer}.Start(t, url)
}

// terceroAnswer is the fake tercero's reply to d. Login accepts ann with
// password "right" (user "blank" is answered ok without an identity);
// the session token "gone" has ended; user "taken" exists already, user
// "nobody" does not, and user "blank" is answered without a row.
func terceroAnswer(d amqp.Delivery) *wire.Reply {
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
		dec := json.NewDecoder(strings.NewReader(string(req.Data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&data); err != nil {
			return fail(wire.CodeBadRequest, "data: "+err.Error())
		}
	}
	token, _ := d.Headers[wire.HeaderSession].(string)
	if token == "gone" {
		return fail(wire.CodeUnauthenticated, "the session has ended: log in again")
	}
	reply := &wire.Reply{OK: true, Event: event, Node: "fake-tercero"}
	switch req.Op {
	case wire.OpLogin:
		switch {
		case data.User == "blank":
		case data.User != "ann" || data.Password != "right":
			return fail(wire.CodeUnauthenticated, "wrong user or password")
		default:
			reply.Identity = &wire.Identity{User: 7, Name: "ann", Roles: []string{"member"}, Session: annSession,
				Expires: annExpires, Token: "token-of-" + event}
		}
	case wire.OpWhoami:
		if token == "" {
			reply.Identity = &wire.Identity{Name: d.UserId, Roles: []string{wire.RoleAdmin}, Service: true}
		} else {
			reply.Identity = &wire.Identity{User: 7, Name: "ann", Roles: []string{"member"}, Session: annSession, Expires: annExpires}
		}
	case wire.OpSessions:
		reply.Rows = []wire.Row{{"id": annSession}, {"id": "cd"}}
		reply.Count = 2
	case wire.OpRevoke:
		reply.Affected = 2
	case wire.OpUser:
		switch data.User {
		case "nobody":
			return fail(wire.CodeNotFound, "no user nobody")
		case "blank":
		case "":
			reply.Rows = []wire.Row{{"id": 7, "name": "ann"}}
		default:
			reply.Rows = []wire.Row{{"id": 8, "name": data.User}}
		}
	case wire.OpRegister:
		if data.User == "taken" {
			return fail(wire.CodeConflict, "user taken exists")
		}
		reply.Affected, reply.Key = 1, 8
	default:
		reply.Affected = 1
	}
	return reply
}

// TestUserAndSessionOps calls each user and session method through a
// fake tercero and checks what arrives (routing key, delivery mode, op,
// data, session header, user_id) and what the caller gets back; calls
// refused by the client send nothing.
func TestUserAndSessionOps(t *testing.T) {
	url := testenv.AMQP(t)
	got := fakeTercero(t, url)
	rabbitUser := "guest"
	if u, err := amqp.ParseURI(url); err == nil {
		rabbitUser = u.Username
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Name: "test", Channels: 1, Session: "own-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Passwords used below: none may show up in an error.
	passwords := []string{"right", "wrong-pw", "s3cret-new", "s3cret-add"}
	for _, tc := range []struct {
		name string
		call func() (any, error)
		// What must arrive; op "" means nothing may be sent.
		op      wire.Op
		data    wire.UserData
		session string // the x-beds-session header; "" for none
		// What the caller must get.
		code wire.Code
		want any // compared with reflect.DeepEqual when not nil
	}{
		{name: "login", call: func() (any, error) {
			id, err := c.Login(ctx, "ann", "right")
			if id != nil && strings.HasPrefix(id.Token, "token-of-") {
				id.Token = "token"
			}
			return id, err
		}, op: wire.OpLogin, data: wire.UserData{User: "ann", Password: "right"},
			want: &wire.Identity{User: 7, Name: "ann", Roles: []string{"member"}, Session: annSession, Expires: annExpires, Token: "token"}},
		{name: "login refused", call: func() (any, error) { return c.Login(ctx, "ann", "wrong-pw") },
			op: wire.OpLogin, data: wire.UserData{User: "ann", Password: "wrong-pw"}, code: wire.CodeUnauthenticated},
		{name: "login with explicit session", call: func() (any, error) { return c.Login(ctx, "ann", "wrong-pw", client.WithSession("other")) },
			op: wire.OpLogin, data: wire.UserData{User: "ann", Password: "wrong-pw"}, session: "other", code: wire.CodeUnauthenticated},
		{name: "login answered without a token", call: func() (any, error) { return c.Login(ctx, "blank", "right") },
			op: wire.OpLogin, data: wire.UserData{User: "blank", Password: "right"}, code: wire.CodeInternal},
		{name: "whoami", call: func() (any, error) { return c.Whoami(ctx) },
			op: wire.OpWhoami, session: "own-token",
			want: &wire.Identity{User: 7, Name: "ann", Roles: []string{"member"}, Session: annSession, Expires: annExpires}},
		{name: "whoami of an ended session", call: func() (any, error) { return c.Whoami(ctx, client.WithSession("gone")) },
			op: wire.OpWhoami, session: "gone", code: wire.CodeUnauthenticated},
		{name: "refresh", call: func() (any, error) { return nil, c.Refresh(ctx) }, op: wire.OpRefresh, session: "own-token"},
		{name: "sessions own", call: func() (any, error) { return c.Sessions(ctx, "") },
			op: wire.OpSessions, session: "own-token", want: []wire.Row{{"id": annSession}, {"id": "cd"}}},
		{name: "sessions of bob", call: func() (any, error) { return c.Sessions(ctx, "bob") },
			op: wire.OpSessions, data: wire.UserData{User: "bob"}, session: "own-token", want: []wire.Row{{"id": annSession}, {"id": "cd"}}},
		{name: "revoke bob", call: func() (any, error) { return c.Revoke(ctx, "bob") },
			op: wire.OpRevoke, data: wire.UserData{User: "bob"}, session: "own-token", want: int64(2)},
		{name: "logout one session", call: func() (any, error) { return nil, c.Logout(ctx, "cd") },
			op: wire.OpLogout, data: wire.UserData{Session: "cd"}, session: "own-token"},
		{name: "register", call: func() (any, error) { return nil, c.Register(ctx, "bob", "s3cret-add", []string{"member", "clerk"}) },
			op: wire.OpRegister, data: wire.UserData{User: "bob", Password: "s3cret-add", Roles: []string{"member", "clerk"}}, session: "own-token"},
		{name: "register without roles", call: func() (any, error) { return nil, c.Register(ctx, "bob", "s3cret-add", nil) },
			op: wire.OpRegister, data: wire.UserData{User: "bob", Password: "s3cret-add"}, session: "own-token"},
		{name: "register taken", call: func() (any, error) { return nil, c.Register(ctx, "taken", "s3cret-add", nil) },
			op: wire.OpRegister, data: wire.UserData{User: "taken", Password: "s3cret-add"}, session: "own-token", code: wire.CodeConflict},
		{name: "passwd own", call: func() (any, error) { return nil, c.Passwd(ctx, "ann", "right", "s3cret-new") },
			op: wire.OpPasswd, data: wire.UserData{User: "ann", Password: "right", NewPassword: "s3cret-new"}, session: "own-token"},
		{name: "passwd by an admin", call: func() (any, error) {
			return nil, c.Passwd(ctx, "bob", "", "s3cret-new", client.WithSession("admin-token"))
		},
			op: wire.OpPasswd, data: wire.UserData{User: "bob", NewPassword: "s3cret-new"}, session: "admin-token"},
		{name: "roles", call: func() (any, error) { return nil, c.SetRoles(ctx, "bob", []string{"clerk"}) },
			op: wire.OpRoles, data: wire.UserData{User: "bob", Roles: []string{"clerk"}}, session: "own-token"},
		{name: "disable", call: func() (any, error) { return nil, c.Disable(ctx, "bob") },
			op: wire.OpDisable, data: wire.UserData{User: "bob"}, session: "own-token"},
		{name: "enable", call: func() (any, error) { return nil, c.Enable(ctx, "bob") },
			op: wire.OpEnable, data: wire.UserData{User: "bob"}, session: "own-token"},
		{name: "user self", call: func() (any, error) { return c.User(ctx, "") },
			op: wire.OpUser, session: "own-token", want: wire.Row{"id": json.Number("7"), "name": "ann"}},
		{name: "user bob", call: func() (any, error) { return c.User(ctx, "bob") },
			op: wire.OpUser, data: wire.UserData{User: "bob"}, session: "own-token", want: wire.Row{"id": json.Number("8"), "name": "bob"}},
		{name: "user unknown", call: func() (any, error) { return c.User(ctx, "nobody") },
			op: wire.OpUser, data: wire.UserData{User: "nobody"}, session: "own-token", code: wire.CodeNotFound},
		{name: "user answered without a row", call: func() (any, error) { return c.User(ctx, "blank") },
			op: wire.OpUser, data: wire.UserData{User: "blank"}, session: "own-token", code: wire.CodeNotFound},

		// DoRaw sends a tercero op that writes as a write, too.
		{name: "raw register", call: func() (any, error) {
			return c.DoRaw(ctx, "usr.register", []byte(`{"op":"register","data":{"user":"raw","password":"s3cret-add"}}`))
		}, op: wire.OpRegister, data: wire.UserData{User: "raw", Password: "s3cret-add"}, session: "own-token"},
		{name: "raw whoami", call: func() (any, error) { return c.DoRaw(ctx, "ses.whoami", []byte(`{"op":"whoami"}`)) },
			op: wire.OpWhoami, session: "own-token"},

		// Refused before sending.
		{name: "login without user", call: func() (any, error) { return c.Login(ctx, "", "right") }, code: wire.CodeBadRequest},
		{name: "login without password", call: func() (any, error) { return c.Login(ctx, "ann", "") }, code: wire.CodeBadRequest},
		{name: "register without password", call: func() (any, error) { return nil, c.Register(ctx, "bob", "", nil) }, code: wire.CodeBadRequest},
		{name: "register with an empty role", call: func() (any, error) { return nil, c.Register(ctx, "bob", "s3cret-add", []string{"a", ""}) },
			code: wire.CodeBadRequest},
		{name: "passwd without new password", call: func() (any, error) { return nil, c.Passwd(ctx, "ann", "right", "") }, code: wire.CodeBadRequest},
		{name: "passwd without user", call: func() (any, error) { return nil, c.Passwd(ctx, "", "right", "s3cret-new") }, code: wire.CodeBadRequest},
		{name: "roles none", call: func() (any, error) { return nil, c.SetRoles(ctx, "bob", nil) }, code: wire.CodeBadRequest},
		{name: "disable nobody", call: func() (any, error) { return nil, c.Disable(ctx, "") }, code: wire.CodeBadRequest},
		{name: "enable nobody", call: func() (any, error) { return nil, c.Enable(ctx, "") }, code: wire.CodeBadRequest},
		{name: "bad session option", call: func() (any, error) { return c.Whoami(ctx, client.WithSession("two words")) }, code: wire.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.call()
			if code(err) != tc.code {
				t.Fatalf("err %v, want code %q", err, tc.code)
			}
			if err != nil {
				for _, pw := range passwords {
					if strings.Contains(err.Error(), pw) {
						t.Errorf("error %q holds a password", err)
					}
				}
			}
			if tc.want != nil && !reflect.DeepEqual(res, tc.want) {
				t.Errorf("got %#v, want %#v", res, tc.want)
			}
			if tc.op == "" {
				return // checked below: nothing was sent
			}
			var d amqp.Delivery
			select {
			case d = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the fake tercero got nothing")
			}
			if want := tc.op.RoutingKey(); d.RoutingKey != want || !strings.HasSuffix(want, "."+string(tc.op)) {
				t.Errorf("routing key %q, want %q", d.RoutingKey, want)
			}
			if persistent := d.DeliveryMode == amqp.Persistent; persistent != tc.op.Writes() {
				t.Errorf("persistent %v, want %v (op %s writes: %v)", persistent, tc.op.Writes(), tc.op, tc.op.Writes())
			}
			if d.UserId != rabbitUser {
				t.Errorf("user_id %q, want %q", d.UserId, rabbitUser)
			}
			req, err := wire.DecodeRequest(d.Body)
			if err != nil || req.Op != tc.op || req.Template != "" {
				t.Fatalf("body %s (%v), want op %s and no template", d.Body, err, tc.op)
			}
			var data wire.UserData
			if req.Data != nil {
				if err := json.Unmarshal(req.Data, &data); err != nil {
					t.Fatalf("data %s: %v", req.Data, err)
				}
			}
			if !reflect.DeepEqual(data, tc.data) {
				t.Errorf("data %s, want %+v", req.Data, tc.data)
			}
			if (req.Data == nil) != reflect.DeepEqual(tc.data, wire.UserData{}) {
				t.Errorf("data %s: want it sent only when it names something", req.Data)
			}
			session, ok := d.Headers[wire.HeaderSession].(string)
			if session != tc.session || ok != (tc.session != "") {
				t.Errorf("session header %q (present %v), want %q", session, ok, tc.session)
			}
		})
	}

	// Nothing refused reached the queue: the next request tercero takes
	// is the whoami sent now.
	if _, err := c.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.RoutingKey != "ses.whoami" {
			t.Errorf("tercero got %s (%s) after the refused calls, want the whoami", d.Body, d.RoutingKey)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fake tercero got nothing")
	}
}

// TestClientSession follows the client's own session: Options.Session,
// SetSession, and Logout and Revoke ending it, against a fake tercero and
// a fake node.
func TestClientSession(t *testing.T) {
	url := testenv.AMQP(t)
	ter := fakeTercero(t, url)
	node := fakeNode(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if _, err := client.Dial(ctx, url, client.Options{Session: "has space"}); code(err) != wire.CodeBadRequest || strings.Contains(err.Error(), "has space") {
		t.Fatalf("dial with a malformed session: %v, want bad_request without the token", err)
	}
	c, err := client.Dial(ctx, url, client.Options{Name: "test", Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// sent returns the session header of the next request of ch.
	sent := func(ch <-chan amqp.Delivery) string {
		t.Helper()
		select {
		case d := <-ch:
			s, _ := d.Headers[wire.HeaderSession].(string)
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("nothing arrived")
			return ""
		}
	}
	read := &wire.Request{Template: "users", Op: wire.OpRead}

	// Without a session: no header; whoami answers the trusted service.
	id, err := c.Whoami(ctx)
	if err != nil || !id.Service || id.Token != "" {
		t.Fatalf("whoami as a service: %+v, %v", id, err)
	}
	if s := sent(ter); s != "" {
		t.Fatalf("a client without a session sent %q", s)
	}
	// Login answers a token and does not start using it.
	id, err = c.Login(ctx, "ann", "right")
	if err != nil {
		t.Fatal(err)
	}
	sent(ter)
	if _, err := c.Do(ctx, read); err != nil {
		t.Fatal(err)
	}
	if s := sent(node); s != "" {
		t.Fatalf("a data request after login sent session %q before SetSession", s)
	}
	// SetSession: every call carries it, data requests too, unless one
	// gives WithSession; Login never does.
	if err := c.SetSession(id.Token); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		ch   <-chan amqp.Delivery
		want string
	}{
		{"do", func() error { _, err := c.Do(ctx, read); return err }, node, id.Token},
		{"batch", func() error { _, err := c.Batch(ctx, []wire.Request{*read}); return err }, node, id.Token},
		{"raw", func() error { _, err := c.DoRaw(ctx, wire.RouteRead, []byte(`{"op":"ping"}`)); return err }, node, id.Token},
		{"with session", func() error { _, err := c.Do(ctx, read, client.WithSession("other")); return err }, node, "other"},
		{"refresh", func() error { return c.Refresh(ctx) }, ter, id.Token},
		{"login", func() error { _, err := c.Login(ctx, "ann", "right"); return err }, ter, ""},
	} {
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s := sent(tc.ch); s != tc.want {
			t.Errorf("%s sent session %q, want %q", tc.name, s, tc.want)
		}
	}
	if err := c.SetSession("two words"); code(err) != wire.CodeBadRequest {
		t.Fatalf("SetSession of a malformed token: %v", err)
	}
	if _, err := c.Do(ctx, read); err != nil {
		t.Fatal(err)
	}
	if s := sent(node); s != id.Token {
		t.Fatalf("a refused SetSession changed the session to %q", s)
	}

	// Logout of another session keeps the client's; of its own ends it.
	if err := c.Logout(ctx, "cd"); err != nil {
		t.Fatal(err)
	}
	sent(ter)
	if err := c.Logout(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if s := sent(ter); s != id.Token {
		t.Fatalf("logout sent %q", s)
	}
	if _, err := c.Do(ctx, read); err != nil {
		t.Fatal(err)
	}
	if s := sent(node); s != "" {
		t.Fatalf("after logout the client still sends %q", s)
	}
	// A session tercero says has ended is dropped as well.
	if err := c.SetSession("gone"); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx, ""); code(err) != wire.CodeUnauthenticated {
		t.Fatalf("logout of an ended session: %v", err)
	}
	sent(ter)
	if _, err := c.Whoami(ctx); err != nil {
		t.Fatalf("whoami after the ended session was dropped: %v", err)
	}
	if s := sent(ter); s != "" {
		t.Fatalf("after an ended session's logout the client still sends %q", s)
	}
	// Revoke of the caller's own sessions ends the client's; of a named
	// user's keeps it.
	if err := c.SetSession("own-token"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Revoke(ctx, "bob"); err != nil || n != 2 {
		t.Fatalf("revoke bob: %d, %v", n, err)
	}
	if s := sent(ter); s != "own-token" {
		t.Fatalf("revoke bob sent %q", s)
	}
	if _, err := c.Revoke(ctx, ""); err != nil {
		t.Fatal(err)
	}
	sent(ter)
	if _, err := c.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	if s := sent(ter); s != "" {
		t.Fatalf("after revoking its own sessions the client still sends %q", s)
	}
	// SetSession("") stops sending one.
	if err := c.SetSession("own-token"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSession(""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, read); err != nil {
		t.Fatal(err)
	}
	if s := sent(node); s != "" {
		t.Fatalf("after SetSession(\"\") the client still sends %q", s)
	}
}

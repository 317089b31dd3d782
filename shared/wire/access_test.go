package wire_test

import (
	"testing"

	"github.com/beds-project/beds/shared/wire"
)

// TestTerceroOps checks where each user and session op goes, which of
// them write, and that they name no template.
func TestTerceroOps(t *testing.T) {
	for _, tc := range []struct {
		op     wire.Op
		key    string
		writes bool
	}{
		{wire.OpRegister, "usr.register", true},
		{wire.OpPasswd, "usr.passwd", true},
		{wire.OpRoles, "usr.roles", true},
		{wire.OpDisable, "usr.disable", true},
		{wire.OpEnable, "usr.enable", true},
		{wire.OpUser, "usr.user", false},
		{wire.OpLogin, "ses.login", true},
		{wire.OpRefresh, "ses.refresh", true},
		{wire.OpLogout, "ses.logout", true},
		{wire.OpRevoke, "ses.revoke", true},
		{wire.OpSessions, "ses.sessions", false},
		{wire.OpWhoami, "ses.whoami", false},
		{wire.OpRead, wire.RouteRead, false},
		{wire.OpCreate, wire.RouteWrite, true},
	} {
		r := wire.Request{Op: tc.op}
		if tc.op == wire.OpRead || tc.op == wire.OpCreate {
			r.Template = "users"
		}
		if !tc.op.Valid() || r.Check() != nil {
			t.Errorf("%s: valid %v, check %v", tc.op, tc.op.Valid(), r.Check())
		}
		if got := r.RoutingKey(); got != tc.key {
			t.Errorf("%s: routing key %q, want %q", tc.op, got, tc.key)
		}
		if r.Writes() != tc.writes {
			t.Errorf("%s: writes %v, want %v", tc.op, r.Writes(), tc.writes)
		}
		wantQueue := wire.EventsQueue
		if tc.op.Tercero() {
			wantQueue = wire.TerceroQueue
		}
		if tc.op.Queue() != wantQueue {
			t.Errorf("%s: queue %s, want %s", tc.op, tc.op.Queue(), wantQueue)
		}
	}
	bad := wire.Request{Op: wire.OpLogin, Template: "users"}
	if err := bad.Check(); err == nil {
		t.Error("login naming a template passed Check")
	}
	r, err := wire.DecodeRequest([]byte(`{"op":"login","data":{"user":"ann","password":"x"}}`))
	if err != nil || r.Op != wire.OpLogin || string(r.Data) != `{"user":"ann","password":"x"}` {
		t.Errorf("decode login: %+v, %v", r, err)
	}
}

func TestIdentityHas(t *testing.T) {
	id := &wire.Identity{Name: "ann", Roles: []string{"member", "admin"}}
	if !id.Has(wire.RoleAdmin) || id.Has("auditor") {
		t.Errorf("Has: %+v", id)
	}
}

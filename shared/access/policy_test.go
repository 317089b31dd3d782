package access_test

import (
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// policyTemplates are the templates the policy cases run on: owned has an
// owner field, listed has [access] without one, unlisted has no [access].
func policyTemplates(t *testing.T) (owned, listed, unlisted *template.Template) {
	t.Helper()
	const head = "tla = \"%s\"\nkind = \"rec\"\nstore = \"mongo\"\n[fields]\nid = { type = \"int\", key = true }\nuser = { type = \"int\" }\n[objects]\ncollection = \"c\"\n[ops]\nallow = [\"create\", \"read\", \"update\", \"delete\", \"count\"]\n"
	parse := func(name, tla, extra string) *template.Template {
		src := "name = \"" + name + "\"\n" + strings.Replace(head, "%s", tla, 1) + extra
		tpl, err := template.Parse(name+".toml", []byte(src), map[string]string{"mongo": template.StoreMongo})
		if err != nil {
			t.Fatal(err)
		}
		return tpl
	}
	owned = parse("owned", "own", "[access]\nread = [\"member\"]\ncount = [\"*\"]\ncreate = [\"member\", \"clerk\"]\nupdate = [\"anyone\"]\nowner = \"user\"\n")
	listed = parse("listed", "lst", "[access]\nread = [\"member\"]\ncount = [\"anyone\"]\n")
	unlisted = parse("bare", "bar", "")
	return owned, listed, unlisted
}

func TestPolicy(t *testing.T) {
	owned, listed, unlisted := policyTemplates(t)
	var (
		admin   = &wire.Identity{User: 1, Name: "root", Roles: []string{"member", wire.RoleAdmin}}
		member  = &wire.Identity{User: 7, Name: "ann", Roles: []string{"member"}}
		clerk   = &wire.Identity{User: 8, Name: "bob", Roles: []string{"clerk"}}
		nobody  = &wire.Identity{User: 9, Name: "eve"} // a user without roles
		service = &wire.Identity{Name: "orders-service", Roles: []string{"member"}, Service: true}
		bare    = &wire.Identity{Name: "batch", Service: true} // a trusted service without roles
	)
	const none = ""
	for _, tc := range []struct {
		name     string
		unlisted string
		t        *template.Template
		op       wire.Op
		caller   *wire.Identity
		owner    int64     // the owner restriction's user, 0 for none
		code     wire.Code // the error's code, "" for allowed
		message  string    // substring of the error's message
	}{
		// Admins: everything, never owner-restricted.
		{"admin reads owned rows unrestricted", config.UnlistedDeny, owned, wire.OpRead, admin, 0, none, ""},
		{"admin deletes where no role may", config.UnlistedDeny, owned, wire.OpDelete, admin, 0, none, ""},
		{"admin on unlisted under deny", config.UnlistedDeny, unlisted, wire.OpUpdate, admin, 0, none, ""},
		{"admin reads lineage", config.UnlistedDeny, nil, wire.OpLineage, admin, 0, none, ""},

		// Roles of a listed op.
		{"member reads own rows", config.UnlistedDeny, owned, wire.OpRead, member, 7, none, ""},
		{"member creates as owner", config.UnlistedDeny, owned, wire.OpCreate, member, 7, none, ""},
		{"second role listed", config.UnlistedDeny, owned, wire.OpCreate, clerk, 8, none, ""},
		{"role not listed", config.UnlistedDeny, owned, wire.OpRead, clerk, 0, wire.CodeForbidden,
			`read on template owned needs one of the roles admin, member; user "bob" has roles clerk`},
		{"user without roles", config.UnlistedDeny, listed, wire.OpRead, nobody, 0, wire.CodeForbidden, `user "eve" has no role`},
		{"op not in the table is for admins", config.UnlistedDeny, owned, wire.OpDelete, member, 0, wire.CodeForbidden,
			"delete on template owned needs role admin"},
		{"listed template ignores unlisted open", config.UnlistedOpen, listed, wire.OpDelete, member, 0, wire.CodeForbidden, "needs role admin"},
		{"no owner field: no restriction", config.UnlistedDeny, listed, wire.OpRead, member, 0, none, ""},

		// "*": any known caller; "anyone": even nobody.
		{"any caller: a user without roles", config.UnlistedDeny, owned, wire.OpCount, nobody, 9, none, ""},
		{"any caller: a service without roles", config.UnlistedDeny, owned, wire.OpCount, bare, 0, none, ""},
		{"any caller: nobody", config.UnlistedDeny, owned, wire.OpCount, nil, 0, wire.CodeUnauthenticated,
			"count on template owned needs a caller with a session or a trusted service: send a session token in header x-beds-session"},
		{"anyone: nobody", config.UnlistedDeny, listed, wire.OpCount, nil, 0, none, ""},
		{"anyone: nobody on an owned template is not restricted", config.UnlistedDeny, owned, wire.OpUpdate, nil, 0, none, ""},
		{"anyone: a user on an owned template is", config.UnlistedDeny, owned, wire.OpUpdate, nobody, 9, none, ""},

		// Nobody known where someone is needed.
		{"nobody, role listed", config.UnlistedDeny, owned, wire.OpRead, nil, 0, wire.CodeUnauthenticated, "needs a caller with one of the roles admin, member"},
		{"nobody, admins only", config.UnlistedDeny, owned, wire.OpDelete, nil, 0, wire.CodeUnauthenticated, "needs a caller with role admin"},

		// Services are never owner-restricted.
		{"service with the role reads every row", config.UnlistedDeny, owned, wire.OpRead, service, 0, none, ""},
		{"service without the role", config.UnlistedDeny, owned, wire.OpRead, bare, 0, wire.CodeForbidden, `service "batch" has no role`},

		// Templates without [access]: unlisted decides.
		{"deny: member", config.UnlistedDeny, unlisted, wire.OpRead, member, 0, wire.CodeForbidden, "read on template bare needs role admin"},
		{"deny: nobody", config.UnlistedDeny, unlisted, wire.OpRead, nil, 0, wire.CodeUnauthenticated, "needs a caller with role admin"},
		{"authenticated: user without roles", config.UnlistedAuthenticated, unlisted, wire.OpDelete, nobody, 0, none, ""},
		{"authenticated: service", config.UnlistedAuthenticated, unlisted, wire.OpCreate, bare, 0, none, ""},
		{"authenticated: nobody", config.UnlistedAuthenticated, unlisted, wire.OpRead, nil, 0, wire.CodeUnauthenticated, "a session or a trusted service"},
		{"open: nobody", config.UnlistedOpen, unlisted, wire.OpDelete, nil, 0, none, ""},

		// Ping: anyone. Lineage: admins, or anyone when unlisted is open.
		{"ping: nobody", config.UnlistedDeny, nil, wire.OpPing, nil, 0, none, ""},
		{"lineage: member", config.UnlistedAuthenticated, nil, wire.OpLineage, member, 0, wire.CodeForbidden, "lineage needs role admin"},
		{"lineage: service", config.UnlistedDeny, nil, wire.OpLineage, service, 0, wire.CodeForbidden, "lineage needs role admin"},
		{"lineage: nobody", config.UnlistedDeny, nil, wire.OpLineage, nil, 0, wire.CodeUnauthenticated, "lineage needs a caller with role admin"},
		{"lineage: open", config.UnlistedOpen, nil, wire.OpLineage, nil, 0, none, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := access.NewPolicy(tc.unlisted)
			if err != nil {
				t.Fatal(err)
			}
			owner, err := p.Allow(tc.t, tc.op, tc.caller)
			if tc.code != "" {
				we, ok := err.(*wire.Error)
				if !ok {
					t.Fatalf("got owner %+v, err %v; want a *wire.Error %s", owner, err, tc.code)
				}
				if we.Code != tc.code || !strings.Contains(we.Message, tc.message) {
					t.Fatalf("got %s: %s\nwant %s: ...%s...", we.Code, we.Message, tc.code, tc.message)
				}
				if owner != nil {
					t.Errorf("a refusal came with owner %+v", owner)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			switch {
			case tc.owner == 0 && owner != nil:
				t.Errorf("owner restriction %d on %s, want none", owner.User, owner.Field.Name)
			case tc.owner != 0 && owner == nil:
				t.Errorf("no owner restriction, want user %d", tc.owner)
			case tc.owner != 0 && (owner.User != tc.owner || owner.Field != tc.t.Access.Owner):
				t.Errorf("owner restriction %d on %s, want %d on %s", owner.User, owner.Field.Name, tc.owner, tc.t.Access.Owner.Name)
			}
		})
	}
}

func TestNewPolicy(t *testing.T) {
	for _, mode := range []string{config.UnlistedDeny, config.UnlistedAuthenticated, config.UnlistedOpen} {
		if _, err := access.NewPolicy(mode); err != nil {
			t.Errorf("%s: %v", mode, err)
		}
	}
	for _, mode := range []string{"", "allow", "Deny"} {
		if _, err := access.NewPolicy(mode); err == nil || !strings.Contains(err.Error(), "access.unlisted") {
			t.Errorf("%q: err %v, want access.unlisted refused", mode, err)
		}
	}
}

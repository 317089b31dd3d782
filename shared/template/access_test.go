package template_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

func TestAccessTable(t *testing.T) {
	// usersTOML has no [access] table: each case adds its own.
	base := usersTOML(t)
	readOnly := strings.Replace(base, `allow = ["create", "read", "update", "delete", "count"]`, `allow = ["read", "count"]`, 1)
	for _, tc := range []struct {
		name   string
		src    string
		roles  map[wire.Op][]string // nil with owner "": no [access] at all
		owner  string
		reason string // a failure: substring of the reason; the line holds "# HERE"
	}{
		{name: "none", src: base},
		{name: "empty table: admins only", src: base + "[access]\n", roles: map[wire.Op][]string{}},
		{name: "roles and owner", src: base + "[access]\nread = [\"member\", \"*\"]\ncount = [\"anyone\"]\ncreate = [\"member\", \"member\"]\nowner = \"age\"\n",
			roles: map[wire.Op][]string{wire.OpRead: {"member", "*"}, wire.OpCount: {"anyone"}, wire.OpCreate: {"member"}}, owner: "age"},
		{name: "empty list", src: base + "[access]\ndelete = []\n", roles: map[wire.Op][]string{wire.OpDelete: {}}},
		{name: "owner on a template without create", src: readOnly + "[access]\nread = [\"member\"]\nowner = \"age\"\n",
			roles: map[wire.Op][]string{wire.OpRead: {"member"}}, owner: "age"},

		{name: "unknown op", src: base + "[access]\nwrite = [\"member\"] # HERE\n", reason: "access.write: not an op of a template"},
		{name: "lineage is no template op", src: base + "[access]\nlineage = [\"member\"] # HERE\n", reason: "access.lineage: not an op"},
		{name: "op not allowed", src: readOnly + "[access]\nread = [\"member\"]\nupdate = [\"member\"] # HERE\n", reason: "access.update: ops.allow does not allow update"},
		{name: "not a list", src: base + "[access]\nread = \"member\" # HERE\n", reason: "access.read must be a list of role names"},
		{name: "empty role", src: base + "[access]\nread = [\"member\", \"\"] # HERE\n", reason: `access.read: "" is not a role name`},
		{name: "blank role", src: base + "[access]\nread = [\" \"] # HERE\n", reason: `access.read: " " is not a role name`},
		{name: "padded role", src: base + "[access]\nread = [\"member \"] # HERE\n", reason: `"member " is not a role name`},
		{name: "role not a string", src: base + "[access]\nread = [1] # HERE\n", reason: "access.read: 1 is not a role name"},
		{name: "owner unknown", src: base + "[access]\nowner = \"user\" # HERE\n", reason: `access.owner: field "user" is not declared`},
		{name: "owner not int", src: base + "[access]\nowner = \"email\" # HERE\n", reason: "field email is string; the owner field holds a user ID, an int"},
		{name: "owner the key", src: base + "[access]\nowner = \"id\" # HERE\n", reason: "field id is the key"},
		{name: "owner not a string", src: base + "[access]\nowner = 3 # HERE\n", reason: "access.owner must name a field"},
		{name: "owner create cannot set", src: strings.Replace(base, `age     = { type = "int", sortable = true }`, `age     = { type = "int", sortable = true, readonly = true }`, 1) + "[access]\nowner = \"age\" # HERE\n",
			reason: "create cannot set field age"},
		{name: "owner not a create parameter", src: strings.Replace(base, "[ops]", "[params]\ncreate = [\"email\"]\n\n[ops]", 1) + "[access]\nowner = \"age\" # HERE\n",
			reason: "create cannot set field age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := template.Parse("users_rec.toml", []byte(tc.src), stores)
			if tc.reason != "" {
				var te *template.Error
				if !errors.As(err, &te) {
					t.Fatalf("err = %v, want a *template.Error", err)
				}
				if te.File != "users_rec.toml" || te.Line != marked(tc.src) || !strings.Contains(te.Reason, tc.reason) {
					t.Fatalf("got %s (line %d), want line %d reason %q", te, te.Line, marked(tc.src), tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.roles == nil {
				if tpl.Access != nil {
					t.Fatalf("Access = %+v, want nil", tpl.Access)
				}
				return
			}
			a := tpl.Access
			if a == nil {
				t.Fatal("Access is nil")
			}
			if len(a.Roles) != len(tc.roles) {
				t.Errorf("roles %v, want %v", a.Roles, tc.roles)
			}
			for op, want := range tc.roles {
				if got, ok := a.Roles[op]; !ok || !slices.Equal(got, want) {
					t.Errorf("%s: roles %v, want %v", op, got, want)
				}
			}
			switch {
			case tc.owner == "" && a.Owner != nil:
				t.Errorf("owner %s, want none", a.Owner.Name)
			case tc.owner != "" && (a.Owner == nil || a.Owner != tpl.Field(tc.owner)):
				t.Errorf("owner %v, want field %s", a.Owner, tc.owner)
			}
		})
	}
}

func TestAccessNotInRel(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "users_rec.toml", usersTOML(t))
	write(t, dir, "rel.toml", "name = \"user_users\"\nkind = \"rel\"\nparent = \"users\"\nchild = \"users\"\n[on]\nparent = \"age\"\nchild = \"id\"\n[access]\nread = [\"member\"]\n")
	_, err := template.Load(dir, stores)
	if err == nil || !strings.Contains(err.Error(), "access does not belong in a rel template") {
		t.Fatalf("Load: %v, want access refused in a rel template", err)
	}
}

func TestAccessNotInFingerprint(t *testing.T) {
	base := usersTOML(t)
	a, err := template.Parse("u.toml", []byte(base), stores)
	if err != nil {
		t.Fatal(err)
	}
	b, err := template.Parse("u.toml", []byte(base+"[access]\nread = [\"member\"]\nowner = \"age\"\n"), stores)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("an [access] table changed the fingerprint; it concerns no database object")
	}
}

// TestShippedAccess checks the shipped templates say who may use them:
// every one has an [access] table, and the domains that belong to a user
// name the field that holds them.
func TestShippedAccess(t *testing.T) {
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), stores)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{"orders": "user", "profiles": "user"}
	for _, name := range reg.Names() {
		tpl := reg.Get(name)
		if tpl.Access == nil {
			t.Errorf("%s: no [access] table; the shipped templates say who may use them", name)
			continue
		}
		owner := ""
		if tpl.Access.Owner != nil {
			owner = tpl.Access.Owner.Name
		}
		if owner != owners[name] {
			t.Errorf("%s: owner %q, want %q", name, owner, owners[name])
		}
	}
}

func TestAccessOpenOwnedWarns(t *testing.T) {
	for _, tc := range []struct {
		extra string
		warn  bool // a warning at the line read = ["anyone"]
	}{
		{"[access]\nread = [\"anyone\"]\nowner = \"age\"\n", true},
		{"[access]\ncreate = [\"anyone\"]\nread = [\"*\"]\nowner = \"age\"\n", false}, // a create is the caller's own
		{"[access]\nread = [\"anyone\"]\n", false},                                    // no owner: nothing to bypass
	} {
		src := usersTOML(t) + tc.extra
		tpl, err := template.Parse("u.toml", []byte(src), stores)
		if err != nil {
			t.Fatal(err)
		}
		var got []*template.Error
		for _, w := range tpl.Warnings() {
			if strings.Contains(w.Reason, "allows anyone") {
				got = append(got, w)
			}
		}
		switch {
		case !tc.warn && len(got) > 0:
			t.Errorf("%q: warned %v", tc.extra, got)
		case tc.warn && (len(got) != 1 || got[0].Line != lineOf(t, src, `read = ["anyone"]`)):
			t.Errorf("%q: warnings %v, want one at read", tc.extra, got)
		}
	}
}

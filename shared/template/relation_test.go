package template_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
)

// userOrders is a valid REL template; the cases below change one line each.
const userOrders = `name = "user_orders"
kind = "rel"
parent = "users"
child = "orders"
as = "orders"
cardinality = "many"

[on]
parent = "id"
child = "user"
`

// audit is a REC template callers can only create in: no read.
const audit = `name = "audit"
tla = "aud"
kind = "rec"
store = "mariadb"

[fields]
id   = { type = "int", key = true }
user = { type = "int" }

[objects]
create = "sp_aud_create"

[ops]
allow = ["create"]
`

// orTemplate is a REC template whose name cannot default an include name.
const orTemplate = `name = "or"
tla = "orx"
kind = "rec"
store = "mariadb"

[fields]
id   = { type = "int", key = true }
user = { type = "int" }

[objects]
read = "vw_orx"

[ops]
allow = ["read"]
`

// relFolder writes the shipped users, orders and profiles templates and
// files into a new folder, and returns it.
func relFolder(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"users_rec.toml", "orders_rec.toml", "profiles_rec.toml"} {
		write(t, dir, f, testenv.TemplateFile(t, f))
	}
	for name, src := range files {
		write(t, dir, name, src)
	}
	return dir
}

func TestRelationErrors(t *testing.T) {
	type tc struct {
		name   string
		src    string            // rel.toml
		extra  map[string]string // more files
		line   int               // -1: the line holding "# HERE"
		reason string
	}
	e := func(old, new string) string { return edit(t, userOrders, old, new) }
	cases := []tc{
		{name: "toml syntax", src: e(`child = "orders"`, `child = "orders # HERE`), line: -1},
		{name: "unknown key", src: e(`as = "orders"`, `as = "orders"`+"\nsa = \"x\" # HERE"), line: -1, reason: `unknown key "sa"`},
		{name: "unknown key in on", src: e(`child = "user"`, `chlid = "user" # HERE`), line: -1, reason: `unknown key "on.chlid"`},
		{name: "missing name", src: e("name = \"user_orders\"\n", ""), reason: "name is missing"},
		{name: "bad name", src: e(`name = "user_orders"`, `name = "User-Orders" # HERE`), line: -1, reason: `name "User-Orders"`},
		{name: "tla", src: e(`kind = "rel"`, "kind = \"rel\"\ntla = \"uor\" # HERE"), line: -1, reason: "tla does not belong in a rel template"},
		{name: "store", src: e(`kind = "rel"`, "kind = \"rel\"\nstore = \"mariadb\" # HERE"), line: -1, reason: "store does not belong in a rel template"},
		{name: "fields", src: userOrders + "[fields] # HERE\nid = { type = \"int\", key = true }\n", line: -1, reason: "fields does not belong in a rel template"},
		{name: "objects", src: userOrders + "[objects] # HERE\nread = \"vw_x\"\n", line: -1, reason: "objects does not belong"},
		{name: "params", src: userOrders + "[params] # HERE\ncreate = [\"id\"]\n", line: -1, reason: "params does not belong"},
		{name: "ops", src: userOrders + "[ops] # HERE\nallow = [\"read\"]\n", line: -1, reason: "ops does not belong"},
		{name: "missing parent", src: e("parent = \"users\"\n", ""), reason: "parent is missing"},
		{name: "missing child", src: e("child = \"orders\"\n", ""), reason: "child is missing"},
		{name: "missing on", src: e("[on]\nparent = \"id\"\nchild = \"user\"\n", ""), reason: "on.parent is missing"},
		{name: "missing on.child", src: e("child = \"user\"\n", ""), line: lineOf(t, userOrders, "[on]"), reason: "on.child is missing: name the field of orders"},
		{name: "bad cardinality", src: e(`cardinality = "many"`, `cardinality = "several" # HERE`), line: -1, reason: `cardinality "several": must be many`},
		{name: "as pattern", src: e(`as = "orders"`, `as = "Orders" # HERE`), line: -1, reason: `as "Orders": use lowercase`},
		{name: "as and", src: e(`as = "orders"`, `as = "and" # HERE`), line: -1, reason: "reserved by the filter language"},
		{name: "as or", src: e(`as = "orders"`, `as = "or" # HERE`), line: -1, reason: "reserved by the filter language"},
		{name: "defaulted as or", src: "name = \"user_or\"\nkind = \"rel\"\nparent = \"users\"\nchild = \"or\" # HERE\n[on]\nparent = \"id\"\nchild = \"user\"\n",
			extra: map[string]string{"or_rec.toml": orTemplate}, line: -1, reason: `as "or": and and or are reserved`},
		{name: "unknown parent", src: e(`parent = "users"`, `parent = "user" # HERE`), line: -1, reason: `parent "user" is not a rec template (known: orders, profiles, users)`},
		{name: "unknown child", src: e(`child = "orders"`, `child = "order" # HERE`), line: -1, reason: `child "order" is not a rec template`},
		{name: "child is a relation", src: e(`child = "orders"`, `child = "order_user" # HERE`),
			extra: map[string]string{"order_user_rel.toml": testenv.TemplateFile(t, "order_user_rel.toml")}, line: -1, reason: `child "order_user" is not a rec template`},
		{name: "parent without read", src: e(`parent = "users"`, `parent = "audit" # HERE`), extra: map[string]string{"audit_rec.toml": audit}, line: -1,
			reason: "parent audit does not allow read"},
		{name: "child without read", src: e(`child = "orders"`, `child = "audit" # HERE`), extra: map[string]string{"audit_rec.toml": audit}, line: -1,
			reason: "child audit does not allow read"},
		{name: "unknown parent field", src: e(`parent = "id"`, `parent = "uid" # HERE`), line: -1, reason: `on.parent "uid" is not a field of users (fields: id, email,`},
		{name: "unknown child field", src: e(`child = "user"`, `child = "usr_user" # HERE`), line: -1, reason: `on.child "usr_user" is not a field of orders`},
		{name: "float parent field", src: e(`parent = "id"`, `parent = "score" # HERE`), line: -1, reason: "on.parent users.score is float: join fields must be int or string"},
		{name: "json parent field", src: e(`parent = "id"`, `parent = "prefs" # HERE`), line: -1, reason: "users.prefs is json"},
		{name: "datetime child field", src: e(`child = "user"`, `child = "placed" # HERE`), line: -1, reason: "on.child orders.placed is datetime: join fields must be int or string"},
		{name: "types differ", src: e(`parent = "id"`, `parent = "email"`), line: lineOf(t, userOrders, `child = "user"`),
			reason: "on.child orders.user is int but on.parent users.email is string: join fields must have one type"},
		{name: "one without the child key", src: e(`cardinality = "many"`, `cardinality = "one"`), line: lineOf(t, userOrders, `child = "user"`),
			reason: "cardinality one needs the key of orders (id)"},
		{name: "as is a parent field", src: e(`as = "orders"`, `as = "email" # HERE`), line: -1, reason: `as "email" is a field of users`},
		{name: "as used twice", src: e(`as = "orders"`, `as = "orders" # HERE`), extra: map[string]string{"a_rel.toml": edit(t, userOrders, `name = "user_orders"`, `name = "first_orders"`)},
			line: -1, reason: `as "orders": users rows already include orders through relation first_orders`},
		{name: "name of a rec template", src: e(`name = "user_orders"`, `name = "orders" # HERE`), line: -1, reason: `template name "orders" is already used by`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line := c.line
			if line < 0 {
				line = marked(c.src)
				if line == 0 {
					t.Fatal("case has no # HERE marker")
				}
			}
			dir := relFolder(t, c.extra)
			file := write(t, dir, "rel.toml", c.src)
			r, err := template.Load(dir, stores)
			if err == nil {
				t.Fatalf("Load succeeded (relations %v), want an error", r.RelationNames())
			}
			var te *template.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T %v is not a *template.Error", err, err)
			}
			if te.File != file || te.Line != line || !strings.Contains(te.Reason, c.reason) {
				t.Errorf("error %v\nwant %s:%d: ...%s...", err, file, line, c.reason)
			}
			if n := strings.Count(err.Error(), "\n"); n != 0 {
				t.Errorf("%d errors, want one: %v", n+1, err)
			}
		})
	}
}

// A REL template with the same name as another REL template is refused
// like two REC templates of one name.
func TestRelationDuplicateName(t *testing.T) {
	dir := relFolder(t, map[string]string{"a_rel.toml": userOrders})
	b := write(t, dir, "b_rel.toml", edit(t, userOrders, `as = "orders"`, `as = "purchases"`))
	_, err := template.Load(dir, stores)
	if err == nil || !strings.Contains(err.Error(), b+":1: template name \"user_orders\" is already used by "+filepath.Join(dir, "a_rel.toml")) {
		t.Errorf("err = %v", err)
	}
}

// A relation naming a template whose own file is invalid is not reported
// again: the one error is the template's.
func TestRelationToInvalidTemplate(t *testing.T) {
	dir := relFolder(t, map[string]string{"rel.toml": userOrders})
	write(t, dir, "orders_rec.toml", edit(t, testenv.TemplateFile(t, "orders_rec.toml"), `tla   = "ord"`, `tla   = "or"`))
	_, err := template.Load(dir, stores)
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), `orders_rec.toml:6: tla "or"`) {
		t.Errorf("err = %v, want the one error of orders_rec.toml", err)
	}
	// With a file whose name is unknown, no relation is checked.
	dir = relFolder(t, map[string]string{"rel.toml": edit(t, userOrders, `child = "orders"`, `child = "nothing"`)})
	write(t, dir, "broken_rec.toml", "name = \n")
	_, err = template.Load(dir, stores)
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "broken_rec.toml:1:") {
		t.Errorf("err = %v, want the one error of broken_rec.toml", err)
	}
}

// Parse checks one file; a relation needs its folder.
func TestParseRefusesRelation(t *testing.T) {
	_, err := template.Parse("rel.toml", []byte(userOrders), stores)
	var te *template.Error
	if !errors.As(err, &te) || te.Line != lineOf(t, userOrders, `kind = "rel"`) || !strings.Contains(te.Reason, "validate the folder") {
		t.Errorf("err = %v, want the kind line and a pointer to Load", err)
	}
}

func TestLoadRelations(t *testing.T) {
	// staff: a template with relations to itself. A member's manager is
	// the staff row whose key is its boss field, so one; its reports are
	// the rows whose boss is its key, so many.
	const staff = `name = "staff"
tla = "stf"
kind = "rec"
store = "mariadb"

[fields]
id      = { type = "int", key = true }
boss    = { type = "int", sortable = true }
code    = { type = "string", max = 8 }

[objects]
read = "vw_stf"

[ops]
allow = ["read", "count"]
`
	files := map[string]string{
		"staff_rec.toml": staff,
		// Files in name order are not in as order.
		"a_staff_manager_rel.toml":   "name = \"staff_manager\"\nkind = \"rel\"\ndescription = \"who one reports to\"\nparent = \"staff\"\nchild = \"staff\"\nas = \"manager\"\ncardinality = \"one\"\non = { parent = \"boss\", child = \"id\" }\n",
		"b_staff_reports_rel.toml":   "name = \"staff_reports\"\nkind = \"rel\"\nparent = \"staff\"\nchild = \"staff\"\nas = \"reports\"\n[on]\nparent = \"id\"\nchild = \"boss\"\n",
		"c_staff_assistant_rel.toml": "name = \"staff_assistant\"\nkind = \"rel\"\nparent = \"staff\"\nchild = \"staff\"\nas = \"assistant\"\ncardinality = \"one\"\n[on]\nparent = \"id\"\nchild = \"id\"\n",
		// Defaults: as is the child's name, cardinality many.
		"user_orders_rel.toml": "name = \"user_orders\"\nkind = \"rel\"\nparent = \"users\"\nchild = \"orders\"\n[on]\nparent = \"id\"\nchild = \"user\"\n",
		// Across stores.
		"user_profiles_rel.toml": testenv.TemplateFile(t, "user_profiles_rel.toml"),
	}
	dir := relFolder(t, files)
	r, err := template.Load(dir, stores)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"orders", "profiles", "staff", "users"}) {
		t.Errorf("Names = %v, want the rec templates only", got)
	}
	if r.Len() != 4 {
		t.Errorf("Len = %d", r.Len())
	}
	wantNames := []string{"staff_assistant", "staff_manager", "staff_reports", "user_orders", "user_profiles"}
	if got := r.RelationNames(); !slices.Equal(got, wantNames) {
		t.Errorf("RelationNames = %v, want %v", got, wantNames)
	}
	for _, n := range wantNames {
		if r.Get(n) != nil {
			t.Errorf("Get(%q) returned a template for a relation", n)
		}
	}

	users, orders, staffT, profiles := r.Get("users"), r.Get("orders"), r.Get("staff"), r.Get("profiles")
	as := func(rels []*template.Relation) []string {
		var out []string
		for _, rel := range rels {
			out = append(out, rel.As)
		}
		return out
	}
	for _, tc := range []struct {
		parent *template.Template
		want   []string
	}{
		{staffT, []string{"assistant", "manager", "reports"}},
		{users, []string{"orders", "profiles"}},
		{orders, nil},
		{profiles, nil},
		{nil, nil},
	} {
		if got := as(r.Relations(tc.parent)); !slices.Equal(got, tc.want) {
			t.Errorf("Relations(%v) = %v, want %v", tc.parent, got, tc.want)
		}
	}

	for _, tc := range []struct {
		parent                               *template.Template
		as, name, file                       string
		child                                *template.Template
		parentField, childField, description string
		many                                 bool
	}{
		{staffT, "manager", "staff_manager", "a_staff_manager_rel.toml", staffT, "boss", "id", "who one reports to", false},
		{staffT, "reports", "staff_reports", "b_staff_reports_rel.toml", staffT, "id", "boss", "", true},
		{staffT, "assistant", "staff_assistant", "c_staff_assistant_rel.toml", staffT, "id", "id", "", false},
		{users, "orders", "user_orders", "user_orders_rel.toml", orders, "id", "user", "", true},
		{users, "profiles", "user_profiles", "user_profiles_rel.toml", profiles, "id", "user", "A user's public profiles", true},
	} {
		rel := r.Relation(tc.parent, tc.as)
		if rel == nil {
			t.Errorf("Relation(%s, %s) = nil", tc.parent.Name, tc.as)
			continue
		}
		if rel.Name != tc.name || rel.As != tc.as || rel.Parent != tc.parent || rel.Child != tc.child ||
			rel.ParentField != tc.parent.Field(tc.parentField) || rel.ChildField != tc.child.Field(tc.childField) ||
			rel.Many != tc.many || rel.File != filepath.Join(dir, tc.file) || rel.Description != tc.description {
			t.Errorf("Relation(%s, %s) = %+v", tc.parent.Name, tc.as, *rel)
		}
	}
	for _, tc := range []struct {
		parent *template.Template
		as     string
	}{
		{users, "order"}, {users, "user_orders"}, {orders, "orders"}, {staffT, ""}, {nil, "orders"},
	} {
		if rel := r.Relation(tc.parent, tc.as); rel != nil {
			t.Errorf("Relation(%v, %q) = %s, want nil", tc.parent, tc.as, rel.Name)
		}
	}

	// A registry built from parsed templates has no relations.
	r2, err := template.NewRegistry(users, orders)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Relations(users) != nil || r2.Relation(users, "orders") != nil || len(r2.RelationNames()) != 0 {
		t.Error("NewRegistry has relations")
	}
	// RelationNames returns a copy.
	r.RelationNames()[0] = "changed"
	if r.RelationNames()[0] != "staff_assistant" {
		t.Error("RelationNames exposes the registry's slice")
	}
}

package template_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// stores is what a node with the default config passes to Parse and Load.
var stores = map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo}

// usersTOML is the shipped users template without its [access] table
// (access_test.go tests those), valid; the cases below change one line
// each.
func usersTOML(t *testing.T) string {
	t.Helper()
	return withoutAccess(testenv.TemplateFile(t, "users_rec.toml"))
}

// withoutAccess cuts a template's source before its [access] table and
// the comment lines right above it; the table must come last.
func withoutAccess(src string) string {
	i := strings.Index(src, "\n[access]")
	if i < 0 {
		return src
	}
	lines := strings.Split(src[:i+1], "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	for len(lines) > 0 && (strings.HasPrefix(lines[len(lines)-1], "#") || lines[len(lines)-1] == "") {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n") + "\n"
}

// usersFields is the [fields] body of the shipped users template.
const usersFields = "id      = { type = \"int\", key = true }\nemail   = { type = \"string\", required = true, max = 254, sortable = true, unique = true }\nname    = { type = \"string\", max = 200, sortable = true }\n" +
	"age     = { type = \"int\", sortable = true }\nscore   = { type = \"float\" }\nactive  = { type = \"bool\" }\nprefs   = { type = \"json\" }\ncreated = { type = \"datetime\", readonly = true, sortable = true }\n"

// profiles is a valid MongoDB template.
const profiles = `name  = "profiles"
tla   = "prf"
kind  = "rec"
store = "mongo"

[fields]
id     = { type = "string", key = true }
user   = { type = "int", required = true }
handle = { type = "string", max = 40 }

[objects]
collection = "profiles"

[ops]
allow = ["create", "read", "update", "delete", "count"]
`

// edit replaces old (which must occur exactly once) in src with new.
func edit(t *testing.T, src, old, new string) string {
	t.Helper()
	if n := strings.Count(src, old); n != 1 {
		t.Fatalf("edit: %q occurs %d times in the source", old, n)
	}
	return strings.Replace(src, old, new, 1)
}

// lineOf returns the 1-based line of src that is exactly text, which must
// occur once.
func lineOf(t *testing.T, src, text string) int {
	t.Helper()
	line := 0
	for i, l := range strings.Split(src, "\n") {
		if l == text {
			if line != 0 {
				t.Fatalf("lineOf: %q is on lines %d and %d", text, line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("lineOf: no line %q in the source", text)
	}
	return line
}

// marked returns the 1-based line holding "# HERE", or 0.
func marked(src string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "# HERE") {
			return i + 1
		}
	}
	return 0
}

func TestParseValid(t *testing.T) {
	users := usersTOML(t)
	for _, tc := range []struct {
		name, src string
	}{
		{"users", users},
		{"profiles", profiles},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := template.Parse(tc.name+".toml", []byte(tc.src), stores)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tpl.Name != tc.name || tpl.Kind != template.KindRec || tpl.File != tc.name+".toml" {
				t.Errorf("got name %q kind %q file %q", tpl.Name, tpl.Kind, tpl.File)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	type tc struct {
		name   string
		src    string
		line   int    // -1: the line holding "# HERE"
		reason string // substring of the reason
	}
	e := func(src, old, new string) string { return edit(t, src, old, new) }
	users := usersTOML(t)
	cases := []tc{
		{"toml syntax", e(users, `tla   = "usr"`, `tla   = "usr`), lineOf(t, users, `tla   = "usr"`), ""},
		{"missing name", e(users, "name  = \"users\"\n", ""), 0, "name is missing"},
		{"bad name uppercase", e(users, `name  = "users"`, `name  = "Users" # HERE`), -1, `name "Users"`},
		{"bad name injection", e(users, `name  = "users"`, `name  = "users; drop" # HERE`), -1, "lowercase letters"},
		{"missing tla", e(users, "tla   = \"usr\"\n", ""), 0, `tla "": must be three lowercase letters`},
		{"bad tla short", e(users, `tla   = "usr"`, `tla   = "us" # HERE`), -1, `tla "us"`},
		{"bad tla upper", e(users, `tla   = "usr"`, `tla   = "USR" # HERE`), -1, "three lowercase letters"},
		{"bad tla long", e(users, `tla   = "usr"`, `tla   = "usrs" # HERE`), -1, "three lowercase letters"},
		{"missing kind", e(users, "kind  = \"rec\"\n", ""), 0, "kind is missing"},
		{"kind rel with rec keys", e(users, `kind  = "rec"`, `kind  = "rel"`), lineOf(t, users, `tla   = "usr"`), "tla does not belong in a rel template"},
		{"rec with a rel key", e(users, `kind  = "rec"`, "kind  = \"rec\"\nparent = \"users\" # HERE"), -1, `parent applies to rel templates only (kind = "rel")`},
		{"rec with an on table", users + "[on] # HERE\nparent = \"id\"\n", -1, "on applies to rel templates only"},
		{"kind unknown", e(users, `kind  = "rec"`, `kind  = "table" # HERE`), -1, `kind "table"`},
		{"missing store", e(users, "store = \"mariadb\"\n", ""), 0, "store is missing"},
		{"unknown store", e(users, `store = "mariadb"`, `store = "postgres" # HERE`), -1, `store "postgres" is not configured (known: mariadb, mongo)`},
		{"unknown top-level key", e(users, `kind  = "rec"`, "kind  = \"rec\"\ntpye = \"x\" # HERE"), -1, `unknown key "tpye"`},
		{"unknown key in a field", e(users, `name    = { type = "string", max = 200, sortable = true }`, `name    = { tpye = "string" } # HERE`), -1, `unknown key "fields.name.tpye"`},
		{"unknown key in objects", e(users, `read   = "vw_usr"`, "read   = \"vw_usr\"\nview = \"vw_x\" # HERE"), -1, `unknown key "objects.view"`},
		{"unknown key in ops", e(users, `allow = [`, "deny = [\"count\"] # HERE\nallow = ["), -1, `unknown key "ops.deny"`},
		{"unknown table", users + "\n[extra] # HERE\nx = 1\n", -1, `unknown key "extra`},
		{"missing type", e(users, `name    = { type = "string", max = 200, sortable = true }`, `name    = { max = 10 } # HERE`), -1, "field name: type is missing"},
		{"unknown type", e(users, `name    = { type = "string", max = 200, sortable = true }`, `name    = { type = "text" } # HERE`), -1, `field name: type "text" is unknown`},
		{"two keys", e(users, `email   = { type = "string", required = true, max = 254, sortable = true, unique = true }`, `email   = { type = "string", key = true } # HERE`), -1, "id is already the key"},
		{"no key", e(users, `id      = { type = "int", key = true }`, `id      = { type = "int" }`), lineOf(t, users, "[fields]"), "no key field"},
		{"key of float", e(users, `id      = { type = "int", key = true }`, `id      = { type = "float", key = true } # HERE`), -1, "a key must be int or string"},
		{"max on int", e(users, `id      = { type = "int", key = true }`, `id      = { type = "int", key = true, max = 9 } # HERE`), -1, "max applies to string fields only"},
		{"max on datetime", e(users, `created = { type = "datetime", readonly = true, sortable = true }`, `created = { type = "datetime", max = 3 } # HERE`), -1, "max applies to string fields only"},
		{"negative max", e(users, `name    = { type = "string", max = 200, sortable = true }`, `name    = { type = "string", max = -1 } # HERE`), -1, "max must not be negative"},
		{"no fields", e(users, usersFields, ""), lineOf(t, users, "[fields]"), "no fields"},
		{"field name uppercase", e(users, `name    = { type = "string", max = 200, sortable = true }`, `Name    = { type = "string" } # HERE`), -1, `field "Name"`},
		{"field name injection", e(users, `name    = { type = "string", max = 200, sortable = true }`, `"name; DROP TABLE x" = { type = "string" } # HERE`), -1, "lowercase letters"},
		{"field named and", e(users, `name    = { type = "string", max = 200, sortable = true }`, `and     = { type = "string" } # HERE`), -1, `field "and": and and or are reserved by the filter language`},
		{"field named or", e(users, `name    = { type = "string", max = 200, sortable = true }`, `or      = { type = "string" } # HERE`), -1, `field "or": and and or are reserved by the filter language`},
		{"stored injection", e(users, `name    = { type = "string", max = 200, sortable = true }`, `name    = { type = "string", stored = "usr_name; DROP TABLE x" } # HERE`), -1, `stored name "usr_name; DROP TABLE x"`},
		{"stored backtick", e(users, `name    = { type = "string", max = 200, sortable = true }`, "name    = { type = \"string\", stored = \"a`b\" } # HERE"), -1, "letters, digits and _ only"},
		{"stored too long", e(users, `name    = { type = "string", max = 200, sortable = true }`, `name    = { type = "string", stored = "`+strings.Repeat("a", 65)+`" } # HERE`), -1, "at most 64"},
		{"stored duplicate", e(users, `name    = { type = "string", max = 200, sortable = true }`, `name    = { type = "string", stored = "usr_email" } # HERE`), -1, "stored name usr_email is already used by field email"},
		{"missing delete object", e(users, "delete = \"sp_usr_delete\"\n", ""), lineOf(t, users, "[objects]"), "objects.delete is missing: ops delete need it"},
		{"missing create object", e(users, "create = \"sp_usr_create\"\n", ""), lineOf(t, users, "[objects]"), "objects.create is missing"},
		{"missing read object", e(e(users, "read   = \"vw_usr\"\n", ""), `allow = ["create", "read", "update", "delete", "count"]`, `allow = ["create", "count"]`), lineOf(t, users, "[objects]"), "objects.read is missing: ops count"},
		{"read object injection", e(users, `read   = "vw_usr"`, `read   = "vw_usr; DROP TABLE x" # HERE`), -1, `objects.read "vw_usr; DROP TABLE x"`},
		{"update object injection", e(users, `update = "sp_usr_update"`, "update = \"sp_usr_update`; --\" # HERE"), -1, "objects.update"},
		{"object with dot", e(users, `create = "sp_usr_create"`, `create = "other.sp_usr_create" # HERE`), -1, "letters, digits and _ only"},
		{"mariadb with collection", e(users, `read   = "vw_usr"`, "read   = \"vw_usr\"\ncollection = \"users\" # HERE"), -1, "objects.collection applies to MongoDB templates"},
		{"unknown op", e(users, `allow = ["create", "read", "update", "delete", "count"]`, `allow = ["read", "drop"] # HERE`), -1, `"drop" is not an operation`},
		{"ping not an op", e(users, `allow = ["create", "read", "update", "delete", "count"]`, `allow = ["read", "ping"] # HERE`), -1, `"ping" is not an operation`},
		{"empty allow", e(users, `allow = ["create", "read", "update", "delete", "count"]`, `allow = []`), lineOf(t, users, "[ops]"), "ops.allow is empty"},
		{"no ops table", e(users, "[ops]\nallow = [\"create\", \"read\", \"update\", \"delete\", \"count\"]\n", ""), 0, "ops.allow is empty"},
		{"params unknown field", users + "[params] \ncreate = [\"email\", \"nmae\"] # HERE\n", -1, `params.create: field "nmae" is not declared`},
		{"params update without key first", users + "[params]\nupdate = [\"email\", \"id\"] # HERE\n", -1, "params.update: the first parameter must be the key id"},
		{"params delete empty", users + "[params]\ndelete = [] # HERE\n", -1, "params.delete: the first parameter must be the key id"},
		{"params on read", users + "[params]\nread = [\"id\"] # HERE\n", -1, "only create, update and delete take parameters"},
		{"mongo with read object", e(profiles, `collection = "profiles"`, "collection = \"profiles\"\nread = \"vw_prf\""), 11, "a MongoDB template names only its collection"},
		{"mongo with create object", e(profiles, `collection = "profiles"`, "create = \"sp_prf_create\"\ncollection = \"profiles\""), 11, "names only its collection"},
		{"mongo missing collection", e(profiles, "collection = \"profiles\"\n", ""), 11, "objects.collection is missing"},
		{"mongo system collection", e(profiles, `collection = "profiles"`, `collection = "system.users" # HERE`), -1, "not a usable collection name"},
		{"mongo dollar collection", e(profiles, `collection = "profiles"`, `collection = "prof$iles" # HERE`), -1, "not a usable collection name"},
		{"mongo stored _id on non-key", e(profiles, `handle = { type = "string", max = 40 }`, `handle = { type = "string", stored = "_id" } # HERE`), -1, "_id is reserved for the key"},
		{"mongo stored _beds name", e(profiles, `handle = { type = "string", max = 40 }`, `handle = { type = "string", stored = "_beds_event" } # HERE`), -1, "reserved for BEDS's own fields"},
		{"mongo stored operator", e(profiles, `handle = { type = "string", max = 40 }`, `handle = { type = "string", stored = "$where" } # HERE`), -1, `stored name "$where"`},
		{"mongo stored dotted", e(profiles, `handle = { type = "string", max = 40 }`, `handle = { type = "string", stored = "a.b" } # HERE`), -1, `stored name "a.b"`},
		{"mongo params", profiles + "[params]\ncreate = [\"user\"] # HERE\n", -1, "params apply to MariaDB procedures only"},
		{"sortable json", e(users, `prefs   = { type = "json" }`, `prefs   = { type = "json", sortable = true } # HERE`), -1, "field prefs: a json field cannot be sortable"},
		{"sortable misspelt", e(users, `age     = { type = "int", sortable = true }`, `age     = { type = "int", sortabel = true } # HERE`), -1, `unknown key "fields.age.sortabel"`},
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
			tpl, err := template.Parse("t.toml", []byte(c.src), stores)
			if err == nil {
				t.Fatalf("Parse succeeded (%s), want an error", tpl.Name)
			}
			var te *template.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T %v is not a *template.Error", err, err)
			}
			if te.File != "t.toml" {
				t.Errorf("File = %q", te.File)
			}
			if te.Line != line {
				t.Errorf("Line = %d, want %d (%v)", te.Line, line, err)
			}
			if !strings.Contains(te.Reason, c.reason) {
				t.Errorf("Reason = %q, want it to contain %q", te.Reason, c.reason)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  template.Error
		want string
	}{
		{template.Error{File: "a.toml", Line: 3, Reason: "bad"}, "a.toml:3: bad"},
		{template.Error{File: "a.toml", Reason: "bad"}, "a.toml: bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func names(fs []*template.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

func TestFieldOrderAndStoredNames(t *testing.T) {
	// Declaration order is deliberately not alphabetical.
	src := edit(t, usersTOML(t), usersFields,
		"zeta    = { type = \"string\" }\nid      = { type = \"int\", key = true }\nmid     = { type = \"float\", stored = \"Mid_Col\" }\nalpha   = { type = \"bool\" }\nemail   = { type = \"string\", required = true, max = 254 }\ncreated = { type = \"datetime\", readonly = true }\nblob    = { type = \"json\" }\n")
	tpl, err := template.Parse("users.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"zeta", "id", "mid", "alpha", "email", "created", "blob"}
	if got := names(tpl.Fields); !slices.Equal(got, want) {
		t.Fatalf("field order %v, want %v", got, want)
	}
	stored := map[string]string{"zeta": "usr_zeta", "id": "usr_id", "mid": "Mid_Col", "alpha": "usr_alpha", "email": "usr_email", "created": "usr_created", "blob": "usr_blob"}
	for i, f := range tpl.Fields {
		if f.Index != i {
			t.Errorf("%s: Index %d, want %d", f.Name, f.Index, i)
		}
		if f.Stored != stored[f.Name] {
			t.Errorf("%s: Stored %q, want %q", f.Name, f.Stored, stored[f.Name])
		}
		if tpl.Field(f.Name) != f {
			t.Errorf("Field(%q) does not return the field", f.Name)
		}
	}
	if tpl.Key == nil || tpl.Key.Name != "id" || !tpl.Key.Key {
		t.Errorf("Key = %+v", tpl.Key)
	}
	if f := tpl.Field("email"); f.Type != template.TypeString || !f.Required || f.Max != 254 || f.Readonly || f.Key {
		t.Errorf("email = %+v", f)
	}
	if f := tpl.Field("created"); !f.Readonly || f.Writable() {
		t.Errorf("created = %+v, writable %v", f, f.Writable())
	}
	if tpl.Key.Writable() {
		t.Error("the key is writable")
	}
	for _, n := range []string{"usr_email", "Email", "", "email "} {
		if tpl.Field(n) != nil {
			t.Errorf("Field(%q) != nil", n)
		}
	}
}

// Sorting is the DBA's decision: only fields marked sortable, and the key
// unless the template says otherwise.
func TestSortable(t *testing.T) {
	sortable := func(tpl *template.Template) []string {
		var out []string
		for _, f := range tpl.Fields {
			if f.Sortable {
				out = append(out, f.Name)
			}
		}
		return out
	}
	users, err := template.Parse("users.toml", []byte(usersTOML(t)), stores)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortable(users), []string{"id", "email", "name", "age", "created"}; !slices.Equal(got, want) {
		t.Errorf("users: sortable %v, want %v", got, want)
	}
	// Unmarked: only the key, by default.
	prf, err := template.Parse("profiles.toml", []byte(profiles), stores)
	if err != nil {
		t.Fatal(err)
	}
	if got := sortable(prf); !slices.Equal(got, []string{"id"}) {
		t.Errorf("profiles: sortable %v, want [id]", got)
	}
	// The key can opt out; sortable = false on a json field is allowed.
	src := edit(t, profiles, `id     = { type = "string", key = true }`, `id     = { type = "string", key = true, sortable = false }`)
	src = edit(t, src, `handle = { type = "string", max = 40 }`, "handle = { type = \"string\", max = 40, sortable = true }\ntags = { type = \"json\", sortable = false }")
	if prf, err = template.Parse("profiles.toml", []byte(src), stores); err != nil {
		t.Fatal(err)
	}
	if got := sortable(prf); !slices.Equal(got, []string{"handle"}) {
		t.Errorf("profiles: sortable %v, want [handle]", got)
	}
	// Not a boolean.
	src = edit(t, profiles, `handle = { type = "string", max = 40 }`, `handle = { type = "string", sortable = "yes" }`)
	if _, err := template.Parse("profiles.toml", []byte(src), stores); err == nil || !strings.Contains(err.Error(), "sortable") {
		t.Errorf("sortable = \"yes\": err %v, want one naming sortable", err)
	}
}

func TestMongoStoredNames(t *testing.T) {
	src := edit(t, profiles, `handle = { type = "string", max = 40 }`, "handle = { type = \"string\", max = 40 }\nnick = { type = \"string\", stored = \"nickname\" }")
	tpl, err := template.Parse("profiles.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.StoreKind != template.StoreMongo || tpl.Store != "mongo" {
		t.Errorf("store %q kind %q", tpl.Store, tpl.StoreKind)
	}
	for name, want := range map[string]string{"id": "_id", "user": "prf_user", "handle": "prf_handle", "nick": "nickname"} {
		if got := tpl.Field(name).Stored; got != want {
			t.Errorf("%s stored as %q, want %q", name, got, want)
		}
	}
	if tpl.Objects.Collection != "profiles" || tpl.Objects.Read != "" {
		t.Errorf("objects %+v", tpl.Objects)
	}

	// A key with an explicit stored name keeps it.
	src = edit(t, profiles, `id     = { type = "string", key = true }`, `id     = { type = "string", key = true, stored = "prf_id" }`)
	tpl, err = template.Parse("profiles.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Key.Stored != "prf_id" {
		t.Errorf("key stored as %q", tpl.Key.Stored)
	}

	// A store named otherwise but of kind mongo behaves as mongo.
	src = edit(t, profiles, `store = "mongo"`, `store = "archive"`)
	tpl, err = template.Parse("profiles.toml", []byte(src), map[string]string{"archive": template.StoreMongo})
	if err != nil {
		t.Fatal(err)
	}
	if tpl.StoreKind != template.StoreMongo || tpl.Key.Stored != "_id" {
		t.Errorf("kind %q key %q", tpl.StoreKind, tpl.Key.Stored)
	}
}

func TestDefaultParams(t *testing.T) {
	tpl, err := template.Parse("users.toml", []byte(usersTOML(t)), stores)
	if err != nil {
		t.Fatal(err)
	}
	for op, want := range map[wire.Op][]string{
		wire.OpCreate: {"email", "name", "age", "score", "active", "prefs"},
		wire.OpUpdate: {"id", "email", "name", "age", "score", "active", "prefs"},
		wire.OpDelete: {"id"},
		wire.OpRead:   nil,
		wire.OpCount:  nil,
	} {
		if got := names(tpl.Params(op)); !slices.Equal(got, want) {
			t.Errorf("Params(%s) = %v, want %v", op, got, want)
		}
	}
}

func TestParamsOverride(t *testing.T) {
	// A key callers name on create is required (the lint).
	users := edit(t, usersTOML(t), `id      = { type = "int", key = true }`, `id      = { type = "int", key = true, required = true }`)
	src := users + "[params]\ncreate = [\"id\", \"email\"]\nupdate = [\"id\", \"name\"]\ndelete = [\"id\", \"email\"]\n"
	tpl, err := template.Parse("users.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	for op, want := range map[wire.Op][]string{
		wire.OpCreate: {"id", "email"},
		wire.OpUpdate: {"id", "name"},
		wire.OpDelete: {"id", "email"},
	} {
		if got := names(tpl.Params(op)); !slices.Equal(got, want) {
			t.Errorf("Params(%s) = %v, want %v", op, got, want)
		}
	}
	// Overriding one list leaves the others at their default.
	src = users + "[params]\ncreate = [\"id\", \"email\", \"name\"]\n"
	tpl, err = template.Parse("users.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(tpl.Params(wire.OpUpdate)); !slices.Equal(got, []string{"id", "email", "name", "age", "score", "active", "prefs"}) {
		t.Errorf("update params %v", got)
	}
}

func TestAllowedOps(t *testing.T) {
	for _, tc := range []struct {
		allow string
		want  []wire.Op
	}{
		{`["count", "read"]`, []wire.Op{wire.OpRead, wire.OpCount}},
		{`["delete", "create", "read", "update", "count"]`, wire.DataOps},
		{`["read", "read"]`, []wire.Op{wire.OpRead}},
	} {
		src := edit(t, usersTOML(t), `allow = ["create", "read", "update", "delete", "count"]`, "allow = "+tc.allow)
		tpl, err := template.Parse("users.toml", []byte(src), stores)
		if err != nil {
			t.Fatalf("%s: %v", tc.allow, err)
		}
		if got := tpl.AllowedOps(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: AllowedOps = %v, want %v", tc.allow, got, tc.want)
		}
		for _, op := range append(wire.DataOps, wire.OpPing, "drop") {
			if got, want := tpl.Allows(op), slices.Contains(tc.want, op); got != want {
				t.Errorf("%s: Allows(%s) = %v", tc.allow, op, got)
			}
		}
	}
}

// A read-only MariaDB template needs only its view.
func TestReadOnlyTemplateNeedsOnlyView(t *testing.T) {
	src := edit(t, usersTOML(t), "create = \"sp_usr_create\"\nupdate = \"sp_usr_update\"\ndelete = \"sp_usr_delete\"\n", "")
	src = edit(t, src, `allow = ["create", "read", "update", "delete", "count"]`, `allow = ["read", "count"]`)
	if _, err := template.Parse("users.toml", []byte(src), stores); err != nil {
		t.Fatal(err)
	}
}

// Table-style field declarations work like inline ones, lines included.
func TestTableStyleFields(t *testing.T) {
	src := `name = "items"
tla = "itm"
kind = "rec"
store = "mariadb"

[fields.id]
type = "int"
key = true

[fields.label]
type = "string"
tpye = "x"

[objects]
read = "vw_itm"

[ops]
allow = ["read"]
`
	_, err := template.Parse("items.toml", []byte(src), stores)
	var te *template.Error
	if !errors.As(err, &te) || te.Line != 12 || !strings.Contains(te.Reason, `"fields.label.tpye"`) {
		t.Fatalf("err = %v, want line 12 unknown key fields.label.tpye", err)
	}
	src = strings.Replace(src, "tpye = \"x\"\n", "", 1)
	tpl, err := template.Parse("items.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(tpl.Fields); !slices.Equal(got, []string{"id", "label"}) {
		t.Errorf("fields %v", got)
	}
}

func templatesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "templates"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadProjectTemplates(t *testing.T) {
	dir := templatesDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no template files in %s (%v)", dir, err)
	}
	r, err := template.Load(dir, stores)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	if n := r.Len() + len(r.RelationNames()); n != len(files) {
		t.Errorf("%d templates and %d relations, want one per file (%d)", r.Len(), len(r.RelationNames()), len(files))
	}
	// Each REC file on its own, too, so a failure names it. The file name
	// says the kind.
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel := strings.HasSuffix(f, "_rel.toml")
		if !rel && !strings.HasSuffix(f, "_rec.toml") {
			t.Errorf("%s: name a template file <name>_rec.toml or <name>_rel.toml", f)
		}
		tpl, err := template.Parse(f, src, stores)
		if rel {
			if err == nil || !strings.Contains(err.Error(), "kind rel") {
				t.Errorf("%s: Parse of a relation: err %v, want it refused", f, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if r.Get(tpl.Name) == nil {
			t.Errorf("%s: template %s not in the registry", f, tpl.Name)
		}
	}
	for _, n := range []string{"users", "example", "orders", "items", "profiles"} {
		if r.Get(n) == nil {
			t.Errorf("template %s missing (have %v)", n, r.Names())
		}
	}
	if names := r.Names(); !slices.IsSorted(names) {
		t.Errorf("Names not sorted: %v", names)
	}
	if u := r.Get("users"); u != nil {
		if u.Field("email").Stored != "usr_email" || u.Objects.Read != "vw_usr" {
			t.Errorf("users: email %q read %q", u.Field("email").Stored, u.Objects.Read)
		}
	}
	if i := r.Get("items"); i != nil && i.Field("order").Stored != "itm_order" {
		t.Errorf("items: order stored as %q", i.Field("order").Stored)
	}
	// The shipped relations, as the include examples of docs/templates.md
	// use them.
	for _, want := range []struct {
		name, parent, as, child, parentField, childField string
		many                                             bool
	}{
		{"user_orders", "users", "orders", "orders", "id", "user", true},
		{"order_items", "orders", "items", "items", "id", "order", true},
		{"order_user", "orders", "customer", "users", "user", "id", false},
		{"user_profiles", "users", "profiles", "profiles", "id", "user", true},
	} {
		rel := r.Relation(r.Get(want.parent), want.as)
		if rel == nil {
			t.Errorf("no relation %s as %s (have %v)", want.parent, want.as, r.RelationNames())
			continue
		}
		if rel.Name != want.name || rel.Child != r.Get(want.child) || rel.ParentField.Name != want.parentField ||
			rel.ChildField.Name != want.childField || rel.Many != want.many || rel.Description == "" {
			t.Errorf("%s as %s: got %s %s.%s = %s.%s many %v description %q", want.parent, want.as, rel.Name,
				rel.Child.Name, rel.ChildField.Name, rel.Parent.Name, rel.ParentField.Name, rel.Many, rel.Description)
		}
	}
	if rel := r.Relation(r.Get("users"), "profiles"); rel != nil && rel.Parent.StoreKind == rel.Child.StoreKind {
		t.Errorf("user_profiles: both ends in %s, want a relation across store kinds", rel.Parent.StoreKind)
	}
}

func write(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDuplicateName(t *testing.T) {
	dir := t.TempDir()
	users := usersTOML(t)
	a := write(t, dir, "a_users.toml", users)
	bsrc := "# the same domain again\n" + users
	b := write(t, dir, "b_users.toml", bsrc)
	_, err := template.Load(dir, stores)
	if err == nil {
		t.Fatal("Load succeeded with two templates named users")
	}
	var te *template.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %T %v is not a *template.Error", err, err)
	}
	line := lineOf(t, bsrc, `name  = "users"`)
	if te.File != b || te.Line != line || !strings.Contains(te.Reason, `"users" is already used by `+a) {
		t.Errorf("error = %v; want %s:%d naming %s", err, b, line, a)
	}
}

func TestLoadFailsOnAnyBadFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "users.toml", usersTOML(t))
	bad := write(t, dir, "profiles.toml", edit(t, profiles, `tla   = "prf"`, `tla   = "pr"`))
	write(t, dir, "notes.txt", "not a template")
	r, err := template.Load(dir, stores)
	if err == nil {
		t.Fatalf("Load succeeded with %v", r.Names())
	}
	if !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("error %q does not name %s:2", err, bad)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := template.Load(filepath.Join(t.TempDir(), "missing"), stores); err == nil {
		t.Error("Load of a missing folder succeeded")
	}
	// A store the config lacks fails the load.
	dir := t.TempDir()
	write(t, dir, "profiles.toml", profiles)
	if _, err := template.Load(dir, map[string]string{"mariadb": template.StoreMariaDB}); err == nil || !strings.Contains(err.Error(), `store "mongo" is not configured`) {
		t.Errorf("err = %v", err)
	}
}

func TestRegistry(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "users.toml", usersTOML(t))
	write(t, dir, "profiles.toml", profiles)
	r, err := template.Load(dir, stores)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || !slices.Equal(r.Names(), []string{"profiles", "users"}) {
		t.Errorf("Names = %v", r.Names())
	}
	if !slices.Equal(r.Stores(), []string{"mariadb", "mongo"}) {
		t.Errorf("Stores = %v", r.Stores())
	}
	if r.Get("nope") != nil {
		t.Error("Get of an unknown name returned a template")
	}
	// Names returns a copy.
	n := r.Names()
	n[0] = "changed"
	if r.Names()[0] != "profiles" {
		t.Error("Names exposes the registry's slice")
	}

	u, p := r.Get("users"), r.Get("profiles")
	r2, err := template.NewRegistry(u, p)
	if err != nil || r2.Len() != 2 || !slices.Equal(r2.Names(), []string{"profiles", "users"}) {
		t.Errorf("NewRegistry: %v %v", err, r2)
	}
	if _, err := template.NewRegistry(u, p, u); err == nil {
		t.Error("NewRegistry accepted a duplicate name")
	}

	empty, err := template.Load(t.TempDir(), stores)
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty folder: %v %v", err, empty)
	}
}

func TestTypeValid(t *testing.T) {
	for _, ty := range []template.Type{template.TypeString, template.TypeInt, template.TypeFloat, template.TypeBool, template.TypeDatetime, template.TypeJSON} {
		if !ty.Valid() {
			t.Errorf("%s not valid", ty)
		}
	}
	for _, ty := range []template.Type{"", "text", "Int", "decimal"} {
		if ty.Valid() {
			t.Errorf("%q valid", ty)
		}
	}
}

// Two problems in [objects] always report the same one.
func TestObjectErrorsDeterministic(t *testing.T) {
	src := edit(t, usersTOML(t), "create = \"sp_usr_create\"\nupdate = \"sp_usr_update\"\ndelete = \"sp_usr_delete\"\n", "delete = \"sp; x\"\n")
	for range 30 {
		_, err := template.Parse("t.toml", []byte(src), stores)
		if err == nil || !strings.Contains(err.Error(), "objects.create is missing") {
			t.Fatalf("err = %v, want objects.create first", err)
		}
	}
}

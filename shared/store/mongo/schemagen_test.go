package mongo

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/store/mongo/script"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/schema from the generator")

// stores are the store names of the shipped templates, by kind.
var stores = map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo}

// shipped loads the repository's template folder.
func shipped(t *testing.T) *template.Registry {
	t.Helper()
	r, err := template.Load(filepath.Join(testenv.Root(t), "templates"), stores)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mongoTemplates returns the shipped MongoDB templates, by name.
func mongoTemplates(t *testing.T) []*template.Template {
	t.Helper()
	reg := shipped(t)
	var out []*template.Template
	for _, n := range reg.Names() {
		if tpl := reg.Get(n); tpl.StoreKind == template.StoreMongo {
			out = append(out, tpl)
		}
	}
	if len(out) == 0 {
		t.Fatal("no shipped MongoDB template")
	}
	return out
}

// parseTemplate parses one MongoDB template of fields and ops.
func parseTemplate(t *testing.T, fields, ops string) *template.Template {
	t.Helper()
	src := "name = \"things\"\ntla = \"thg\"\nkind = \"rec\"\nstore = \"mongo\"\n[objects]\ncollection = \"things\"\n[ops]\nallow = " + ops + "\n[fields]\n" + fields
	tpl, err := template.Parse("things_rec.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// The generator's text for every shipped MongoDB template, byte for byte:
// testdata/schema/<template>.js (go test -run TestGenerateGolden -update
// rewrites them; review the diff). The text declares its spec as JSON that
// testenv reads back: the collection, the validator and the indexes.
func TestGenerateGolden(t *testing.T) {
	for _, tpl := range mongoTemplates(t) {
		t.Run(tpl.Name, func(t *testing.T) {
			got, err := GenerateSchema(tpl)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := GenerateSchema(tpl)
			if !bytes.Equal(got, again) {
				t.Fatal("two generations differ")
			}
			golden := filepath.Join("testdata", "schema", tpl.Name+".js")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestGenerateGolden -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("generated text differs from %s (go test -run TestGenerateGolden -update, then review the diff):\n%s", golden, got)
			}
			if name, fp, ok := schema.ParseHeader(got); !ok || name != tpl.Name || fp != tpl.Fingerprint() {
				t.Errorf("header names %q %q %v, want %s %s", name, fp, ok, tpl.Name, tpl.Fingerprint())
			}
			specs, err := script.Parse(got)
			if err != nil || len(specs) != 1 {
				t.Fatalf("spec: %v, %d specs", err, len(specs))
			}
			s := specs[0]
			if s.Collection != tpl.Objects.Collection || s.Validator == nil || s.ValidationLevel != "strict" || s.ValidationAction != "error" {
				t.Errorf("spec %+v", s)
			}
			var names []string
			for _, ix := range schema.Indexes(tpl) {
				if ix.Field.Stored != idKey {
					names = append(names, indexName(ix))
				}
			}
			var gotNames []string
			for _, ix := range s.Indexes {
				for _, e := range ix {
					if e.Key == "name" {
						gotNames = append(gotNames, e.Value.(string))
					}
				}
			}
			if !slices.Equal(gotNames, names) {
				t.Errorf("indexes %v, want %v", gotNames, names)
			}
		})
	}
}

// The validator and indexes of every kind of field: types, null where a
// field may be left out, maxLength, required, a key stored under another
// name, a unique field callers may leave out.
func TestGenerateFields(t *testing.T) {
	tpl := parseTemplate(t, `code  = { type = "string", key = true, stored = "thg_code", max = 200 }
n     = { type = "int", required = true, sortable = true }
f     = { type = "float" }
b     = { type = "bool", required = true }
d     = { type = "datetime", readonly = true }
j     = { type = "json", required = true }
nick  = { type = "string", max = 30, unique = true }
`, `["create", "read", "update"]`)
	src, err := GenerateSchema(tpl)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := script.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	v, err := bson.Marshal(specs[0].Validator)
	if err != nil {
		t.Fatal(err)
	}
	js := bson.Raw(v).Lookup("$jsonSchema").Document()
	req, _ := js.Lookup("required").Array().Values()
	var required []string
	for _, r := range req {
		required = append(required, r.StringValue())
	}
	if want := []string{"thg_code", "thg_n", "thg_b", "thg_j"}; !slices.Equal(required, want) {
		t.Errorf("required %v, want %v", required, want)
	}
	props := js.Lookup("properties").Document()
	for _, tc := range []struct {
		stored string
		types  []string // nil: no bsonType
		max    int32
	}{
		{"thg_code", []string{"string"}, 200},
		{"thg_n", []string{"int", "long"}, 0},
		{"thg_f", []string{"double", "int", "long", "null"}, 0},
		{"thg_b", []string{"bool"}, 0},
		{"thg_d", []string{"date", "null"}, 0},
		{"thg_j", nil, 0},
		{"thg_nick", []string{"string", "null"}, 30},
	} {
		p := props.Lookup(tc.stored).Document()
		got, restricted := admitted(p)
		if restricted != (tc.types != nil) || !slices.Equal(got, tc.types) {
			t.Errorf("%s: bsonType %v, want %v", tc.stored, got, tc.types)
		}
		ml, err := p.LookupErr("maxLength")
		if (err == nil) != (tc.max > 0) || err == nil && ml.Int32() != tc.max {
			t.Errorf("%s: maxLength %v, want %d", tc.stored, ml, tc.max)
		}
	}
	for _, want := range []string{
		`{"key": {"thg_code": 1}, "name": "uq_thg_code", "unique": true},`,
		`// field code: the key`,
		`{"key": {"thg_n": 1}, "name": "ix_thg_n"},`,
		`{"key": {"thg_nick": 1}, "name": "uq_thg_nick", "unique": true}`,
		`// field nick: unique; a missing value counts as null, so one document may lack it (more: make it partial)`,
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("script lacks %q:\n%s", want, src)
		}
	}
	// The template's validator contradicts nothing of it.
	var diffs []string
	checkValidator(tpl, v, func(e, f string) { diffs = append(diffs, e+" / "+f) })
	if len(diffs) > 0 {
		t.Errorf("the generated validator contradicts its template: %v", diffs)
	}
}

// What the generator cannot write, it refuses, naming the file, the field
// and what to change.
func TestGenerateRefuses(t *testing.T) {
	short := parseTemplate(t, "id = { type = \"string\", key = true, max = 26 }\n", `["create", "read"]`)
	if _, err := GenerateSchema(short); err == nil || !strings.Contains(err.Error(), "things_rec.toml") || !strings.Contains(err.Error(), "field id") || !strings.Contains(err.Error(), "set max to at least 200") {
		t.Errorf("short event key: %v", err)
	}
	// Required, or never created by BEDS: the max is the caller's.
	for _, tc := range []struct{ fields, ops string }{
		{"id = { type = \"string\", key = true, max = 26, required = true }\n", `["create", "read"]`},
		{"id = { type = \"string\", key = true, max = 26 }\n", `["read", "update"]`},
	} {
		if _, err := GenerateSchema(parseTemplate(t, tc.fields, tc.ops)); err != nil {
			t.Errorf("%s %s: %v", tc.fields, tc.ops, err)
		}
	}
	maria, err := template.Parse("p.toml", []byte("name = \"p\"\ntla = \"ppp\"\nkind = \"rec\"\nstore = \"mariadb\"\n[fields]\nid = { type = \"int\", key = true }\n[objects]\nread = \"vw_ppp\"\n[ops]\nallow = [\"read\"]\n"), stores)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateSchema(maria); err == nil || !strings.Contains(err.Error(), "not MongoDB") {
		t.Errorf("mariadb template: err %v", err)
	}
}

package mariadb

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/template"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/schema from the generator")

// The generator's text for every shipped MariaDB template, byte for byte:
// testdata/schema/<template>.sql (go test -run TestGenerateGolden -update
// rewrites them; review the diff).
func TestGenerateGolden(t *testing.T) {
	reg := shipped(t)
	n := 0
	for _, name := range reg.Names() {
		tpl := reg.Get(name)
		if tpl.StoreKind != template.StoreMariaDB {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			got, err := GenerateSchema(tpl)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := GenerateSchema(tpl)
			if !bytes.Equal(got, again) {
				t.Fatal("two generations differ")
			}
			golden := filepath.Join("testdata", "schema", name+".sql")
			if *update {
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
			if name2, fp, ok := schema.ParseHeader(got); !ok || name2 != name || fp != tpl.Fingerprint() {
				t.Errorf("header names %q %q %v, want %s %s", name2, fp, ok, name, tpl.Fingerprint())
			}
		})
	}
	if n == 0 {
		t.Fatal("no shipped MariaDB template")
	}
}

// What the generator cannot write, it refuses naming the field and what
// to change.
func TestGenerateRefuses(t *testing.T) {
	stores := map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo}
	base := `name = "things"
tla = "thg"
kind = "rec"
store = "mariadb"
[objects]
read = "vw_thg"
create = "sp_thg_create"
update = "sp_thg_update"
delete = "sp_thg_delete"
[ops]
allow = ["create", "read", "update", "delete", "count"]
[fields]
`
	for _, tc := range []struct{ name, fields, want string }{
		{"sortable text", "id = { type = \"int\", key = true }\nnote = { type = \"string\", sortable = true }\n", "field note is indexed (sortable)"},
		{"unique too long", "id = { type = \"int\", key = true }\nnote = { type = \"string\", max = 769, unique = true }\n", "set max to at most 768"},
		{"string key without max", "id = { type = \"string\", key = true }\n", "field id is indexed (the key)"},
		{"generated string key too short", "id = { type = \"string\", key = true, max = 20 }\n", "at least 36"},
		{"row too wide", "id = { type = \"int\", key = true }\n" + strings.Repeat("", 0) + wide(17), "over MariaDB's 65535"},
		{"parameter named like a column", "id = { type = \"int\", key = true }\nx = { type = \"int\", stored = \"p_y\" }\ny = { type = \"int\" }\n", "parameter name p_y is also a stored column name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := template.Parse("things_rec.toml", []byte(base+tc.fields), stores)
			if err != nil {
				t.Fatal(err)
			}
			_, err = GenerateSchema(tpl)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "things_rec.toml") {
				t.Errorf("err %v, want one naming the file and %q", err, tc.want)
			}
		})
	}
	mongo, err := template.Parse("p.toml", []byte("name = \"p\"\ntla = \"ppp\"\nkind = \"rec\"\nstore = \"mongo\"\n[fields]\nid = { type = \"string\", key = true }\n[objects]\ncollection = \"p\"\n[ops]\nallow = [\"read\"]\n"), stores)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateSchema(mongo); err == nil || !strings.Contains(err.Error(), "not MariaDB") {
		t.Errorf("mongo template: err %v", err)
	}
}

// wide declares n string fields of 1024 characters.
func wide(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("f" + string(rune('a'+i)) + " = { type = \"string\", max = 1024 }\n")
	}
	return b.String()
}

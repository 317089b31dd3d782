package mongo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/store/mongo/script"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// generatedDB returns a store on a fresh database holding the generated
// objects of ts, applied as testenv applies deploy/mongo.
func generatedDB(t *testing.T, ts ...*template.Template) *Store {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for _, tpl := range ts {
		src, err := GenerateSchema(tpl)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, tpl.Name+".js")
		if err := os.WriteFile(f, src, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	s, err := Open(t.Context(), Config{URI: testenv.MongoWith(t, files...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func checkSchema(t *testing.T, s *Store, ts ...*template.Template) []schema.Difference {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	diffs, err := s.CheckSchema(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	return diffs
}

// run runs database commands, failing the test on an error.
func run(t *testing.T, db *mongo.Database, cmds ...bson.D) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range cmds {
		if err := db.RunCommand(ctx, c).Err(); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
}

func dropIndex(coll, name string) bson.D {
	return bson.D{{Key: "dropIndexes", Value: coll}, {Key: "index", Value: name}}
}

func createIndex(coll, name string, unique bool, keys ...bson.E) bson.D {
	ix := bson.D{{Key: "key", Value: bson.D(keys)}, {Key: "name", Value: name}}
	if unique {
		ix = append(ix, bson.E{Key: "unique", Value: true})
	}
	return bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{ix}}}
}

// The generated objects of every shipped template, and of one whose key
// is not _id, pass the check as they are, and each way of breaking an
// index or a collection is reported as the difference it is (on FerretDB
// here; validators, which it lacks, are TestCheckValidator's).
func TestCheckFindsDifferences(t *testing.T) {
	ts := mongoTemplates(t)
	things := parseTemplate(t, "code = { type = \"string\", key = true, stored = \"thg_code\", required = true, max = 64 }\nn = { type = \"int\" }\n", `["create", "read", "update", "delete"]`)
	ts = append(ts, things)
	if diffs := checkSchema(t, generatedDB(t, ts...), ts...); len(diffs) != 0 {
		t.Fatalf("generated objects: %v", diffs)
	}
	for _, tc := range []struct {
		name  string
		alter []bson.D
		want  []schema.Difference
	}{
		{"index missing",
			[]bson.D{dropIndex("profiles", "ix_prf_user")},
			[]schema.Difference{{Template: "profiles", Object: "collection profiles", Expected: "an index starting with prf_user, neither partial nor sparse (field user: sortable, joined)", Found: "none"}}},
		{"index with other keys",
			[]bson.D{dropIndex("profiles", "ix_prf_user"), createIndex("profiles", "ix_prf_user", false, bson.E{Key: "prf_bio", Value: 1})},
			[]schema.Difference{{Template: "profiles", Object: "collection profiles", Expected: "an index starting with prf_user, neither partial nor sparse (field user: sortable, joined)", Found: "ix_prf_user on prf_bio 1 (not unique)"}}},
		{"unique index that is not unique",
			[]bson.D{dropIndex("profiles", "uq_prf_handle"), createIndex("profiles", "uq_prf_handle", false, bson.E{Key: "prf_handle", Value: 1})},
			[]schema.Difference{{Template: "profiles", Object: "collection profiles", Expected: "a unique index on prf_handle alone (field handle: unique, sortable)", Found: "uq_prf_handle on prf_handle 1 (not unique)"}}},
		{"unique index on more than the field",
			[]bson.D{dropIndex("profiles", "uq_prf_handle"), createIndex("profiles", "uq_prf_handle", true, bson.E{Key: "prf_handle", Value: 1}, bson.E{Key: "prf_user", Value: 1})},
			[]schema.Difference{{Template: "profiles", Object: "collection profiles", Expected: "a unique index on prf_handle alone (field handle: unique, sortable)", Found: "uq_prf_handle on prf_handle 1, prf_user 1 (unique)"}}},
		{"key stored elsewhere without its unique index",
			[]bson.D{dropIndex("things", "uq_thg_code")},
			[]schema.Difference{{Template: "things", Object: "collection things", Expected: "a unique index on thg_code alone (field code: the key)", Found: "none"}}},
		{"collection missing",
			[]bson.D{{{Key: "drop", Value: "msLogs"}}},
			[]schema.Difference{{Template: "logs", Object: "collection msLogs", Expected: "a collection with 3 indexes (ix_log_at, ix_log_level, ix_log_event)", Found: "none"}}},
		{"collection without indexes missing",
			[]bson.D{{{Key: "drop", Value: "things"}}},
			[]schema.Difference{{Template: "things", Object: "collection things", Expected: "a collection with 1 index (uq_thg_code)", Found: "none"}}},
		{"hand edits that keep the indexes pass",
			[]bson.D{
				dropIndex("msLogs", "ix_log_level"), createIndex("msLogs", "ix_log_level_at", false, bson.E{Key: "log_level", Value: 1}, bson.E{Key: "log_at", Value: -1}),
				dropIndex("msLogs", "ix_log_at"), createIndex("msLogs", "by_time", false, bson.E{Key: "log_at", Value: -1}),
				dropIndex("profiles", "uq_prf_handle"), createIndex("profiles", "handles", true, bson.E{Key: "prf_handle", Value: -1}),
				createIndex("profiles", "ix_extra", false, bson.E{Key: "prf_since", Value: 1}),
			},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := generatedDB(t, ts...)
			run(t, s.db, tc.alter...)
			if got := checkSchema(t, s, ts...); !slices.Equal(got, tc.want) {
				t.Errorf("differences:\n%v\nwant:\n%v", got, tc.want)
			}
		})
	}
}

// What FerretDB cannot show (sparse and partial indexes, special keys)
// decides as the check says, on the index list MongoDB would answer.
func TestCheckIndexKinds(t *testing.T) {
	reg := shipped(t)
	profiles := reg.Get("profiles")
	var user, handle schema.Index
	for _, ix := range schema.Indexes(profiles) {
		switch ix.Field.Name {
		case "user":
			user = ix
		case "handle":
			handle = ix
		}
	}
	keys := func(kv ...any) bson.D {
		var d bson.D
		for i := 0; i < len(kv); i += 2 {
			d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
		}
		return d
	}
	for _, tc := range []struct {
		name  string
		ix    schema.Index
		index dbIndex
		found string // "" when it serves ix
	}{
		{"ascending", user, dbIndex{name: "a", keys: keys("prf_user", int32(1))}, ""},
		{"descending, as a double", user, dbIndex{name: "a", keys: keys("prf_user", -1.0)}, ""},
		{"compound", user, dbIndex{name: "a", keys: keys("prf_user", int64(1), "prf_since", int32(-1))}, ""},
		{"sparse", user, dbIndex{name: "a", keys: keys("prf_user", int32(1)), sparse: true}, "a on prf_user 1 (not unique, sparse)"},
		{"partial", user, dbIndex{name: "a", keys: keys("prf_user", int32(1)), partial: true}, "a on prf_user 1 (not unique, partial)"},
		{"hashed", user, dbIndex{name: "a", keys: keys("prf_user", "hashed")}, "none"},
		{"second key", user, dbIndex{name: "a", keys: keys("prf_since", int32(1), "prf_user", int32(1))}, "none"},
		{"unique", handle, dbIndex{name: "u", keys: keys("prf_handle", int32(1)), unique: true}, ""},
		{"unique and partial", handle, dbIndex{name: "u", keys: keys("prf_handle", int32(1)), unique: true, partial: true}, ""},
		{"unique and sparse", handle, dbIndex{name: "u", keys: keys("prf_handle", int32(1)), unique: true, sparse: true}, ""},
		{"not unique", handle, dbIndex{name: "u", keys: keys("prf_handle", int32(1))}, "u on prf_handle 1 (not unique)"},
		{"named as generated, other keys", handle, dbIndex{name: "uq_prf_handle", keys: keys("prf_bio", int32(1)), unique: true}, "uq_prf_handle on prf_bio 1 (unique)"},
	} {
		var found []string
		checkIndex(tc.ix, []dbIndex{{name: "_id_", keys: keys("_id", int32(1)), unique: true}, tc.index}, func(_, f string) { found = append(found, f) })
		switch {
		case tc.found == "" && len(found) > 0:
			t.Errorf("%s: not served: %v", tc.name, found)
		case tc.found != "" && !slices.Equal(found, []string{tc.found}):
			t.Errorf("%s: found %v, want %q", tc.name, found, tc.found)
		}
	}
}

// validatorOf returns the generated validator of tpl, as a document to
// change.
func validatorOf(t *testing.T, tpl *template.Template) bson.M {
	t.Helper()
	src, err := GenerateSchema(tpl)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := script.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bson.Marshal(specs[0].Validator)
	if err != nil {
		t.Fatal(err)
	}
	dec := bson.NewDecoder(bson.NewDocumentReader(bytes.NewReader(b)))
	dec.DefaultDocumentM()
	var m bson.M
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The validator a DBA may have set on MongoDB is compared with the
// template: one that requires what a create may leave out, or admits not
// every value BEDS stores, is reported; the generated one, and looser
// ones, are not.
func TestCheckValidator(t *testing.T) {
	reg := shipped(t)
	profiles := reg.Get("profiles")
	readOnly := parseTemplate(t, "id = { type = \"string\", key = true }\nn = { type = \"int\" }\n", `["read", "update"]`)
	jsonSchema := func(m bson.M) bson.M { return m["$jsonSchema"].(bson.M) }
	prop := func(m bson.M, name string) bson.M { return jsonSchema(m)["properties"].(bson.M)[name].(bson.M) }
	require := func(names ...string) func(bson.M) {
		return func(m bson.M) {
			js := jsonSchema(m)
			for _, n := range names {
				js["required"] = append(js["required"].(bson.A), n)
			}
		}
	}
	set := func(field, key string, v any) func(bson.M) { return func(m bson.M) { prop(m, field)[key] = v } }
	for _, tc := range []struct {
		name   string
		tpl    *template.Template
		change func(bson.M)
		want   []schema.Difference
	}{
		{"generated", profiles, func(bson.M) {}, nil},
		{"requires an optional field", profiles, require("prf_bio"),
			[]schema.Difference{{Expected: "a validator that does not require prf_bio (field bio is not required: a create may leave it out)", Found: "required prf_bio"}}},
		{"requires a field of no template field", profiles, require("tenant"),
			[]schema.Difference{{Expected: "a validator that does not require tenant (no field of the template: a create never writes it)", Found: "required tenant"}}},
		{"requires without create: not BEDS's concern", readOnly, require("thg_n", "tenant"), nil},
		{"int as int only", profiles, set("prf_user", "bsonType", "int"),
			[]schema.Difference{{Expected: "property prf_user admitting long (field user, int, as BEDS stores it)", Found: "property prf_user without long"}}},
		{"optional field without null", profiles, set("prf_bio", "bsonType", "string"),
			[]schema.Difference{{Expected: "property prf_bio admitting string, null (field bio, string, as BEDS stores it)", Found: "property prf_bio without null"}}},
		{"json as object only", profiles, set("prf_tags", "bsonType", "object"),
			[]schema.Difference{{Expected: "property prf_tags admitting object, array, string, long, double, bool, null (field tags, json, as BEDS stores it)", Found: "property prf_tags without array, string, long, double, bool, null"}}},
		{"float as a JSON Schema number", profiles, func(m bson.M) {
			delete(prop(m, "prf_rating"), "bsonType")
			prop(m, "prf_rating")["type"] = bson.A{"number", "null"}
		}, nil},
		{"float as a date", profiles, func(m bson.M) {
			delete(prop(m, "prf_rating"), "bsonType")
			prop(m, "prf_rating")["type"] = "boolean"
		}, []schema.Difference{{Expected: "property prf_rating admitting double, null (field rating, float, as BEDS stores it)", Found: "property prf_rating without double, null"}}},
		{"no type: any", profiles, func(m bson.M) { delete(prop(m, "prf_user"), "bsonType") }, nil},
		{"maxLength below max", profiles, set("prf_handle", "maxLength", int32(20)),
			[]schema.Difference{{Expected: "property prf_handle admitting strings of 40 characters (field handle, max 40)", Found: "property prf_handle with maxLength 20"}}},
		{"maxLength above max", profiles, set("prf_handle", "maxLength", 80.0), nil},
		{"maxLength on a string without max", profiles, set("_id", "maxLength", int32(26)),
			[]schema.Difference{{Expected: "property _id admitting strings of any length (field id has no max)", Found: "property _id with maxLength 26"}}},
		{"no other fields, not even the stamp", profiles, func(m bson.M) { jsonSchema(m)["additionalProperties"] = false },
			[]schema.Difference{{Expected: "a validator admitting _beds_event (BEDS's event stamp, on every document it writes)", Found: "additionalProperties false without a property _beds_event"}}},
		{"no other fields, the stamp listed", profiles, func(m bson.M) {
			jsonSchema(m)["additionalProperties"] = false
			jsonSchema(m)["properties"].(bson.M)["_beds_event"] = bson.M{"bsonType": "string"}
		}, nil},
		{"no other fields, a field left out", profiles, func(m bson.M) {
			jsonSchema(m)["additionalProperties"] = false
			jsonSchema(m)["properties"].(bson.M)["_beds_event"] = bson.M{"bsonType": "string"}
			delete(jsonSchema(m)["properties"].(bson.M), "prf_since")
		}, []schema.Difference{{Expected: "a validator admitting prf_since (field since)", Found: "additionalProperties false without a property prf_since"}}},
		{"query operators only", profiles, func(m bson.M) {
			delete(m, "$jsonSchema")
			m["prf_user"] = bson.M{"$gte": 0}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validatorOf(t, profiles)
			if tc.tpl != profiles {
				m = validatorOf(t, tc.tpl)
			}
			tc.change(m)
			v, err := bson.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var got []schema.Difference
			checkValidator(tc.tpl, v, func(e, f string) { got = append(got, schema.Difference{Expected: e, Found: f}) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("differences:\n%v\nwant:\n%v", got, tc.want)
			}
		})
	}

	// A validator that does not apply, or a template that does not write,
	// is not compared.
	m := validatorOf(t, profiles)
	require("tenant")(m)
	v, _ := bson.Marshal(m)
	c := &dbCollection{kind: "collection", validator: v, validationLevel: "off", indexes: []dbIndex{
		{name: "ix_prf_user", keys: bson.D{{Key: "prf_user", Value: int32(1)}}},
		{name: "uq_prf_handle", keys: bson.D{{Key: "prf_handle", Value: int32(1)}}, unique: true},
	}}
	if diffs := checkTemplate(profiles, c); len(diffs) != 0 {
		t.Errorf("validationLevel off: %v", diffs)
	}
	c.validationLevel = "moderate"
	if diffs := checkTemplate(profiles, c); len(diffs) != 1 || diffs[0].Found != "required tenant" {
		t.Errorf("validationLevel moderate: %v", diffs)
	}
	readsOnly := parseTemplate(t, "id = { type = \"string\", key = true }\n", `["read", "delete"]`)
	if diffs := checkTemplate(readsOnly, c); len(diffs) != 0 {
		t.Errorf("a template that does not write: %v", diffs)
	}
}

// bsonAlias names BSON types as $jsonSchema's bsonType does.
var bsonAlias = map[bson.Type]string{
	bson.TypeDouble: "double", bson.TypeString: "string", bson.TypeEmbeddedDocument: "object", bson.TypeArray: "array",
	bson.TypeBoolean: "bool", bson.TypeDateTime: "date", bson.TypeNull: "null", bson.TypeInt32: "int", bson.TypeInt64: "long",
}

// The types the check expects BEDS to store (storedTypes) are the ones
// the adapter stores, value by value, so the generated validator admits
// every document BEDS writes.
func TestStoredTypes(t *testing.T) {
	s := testStore(t)
	tpl := parseTemplate(t, `id = { type = "string", key = true }
s = { type = "string", max = 10 }
n = { type = "int" }
f = { type = "float" }
b = { type = "bool" }
d = { type = "datetime" }
j = { type = "json" }
`, `["create", "read", "update"]`)
	for i, data := range []string{
		`{"s": "x", "n": 3, "f": 2, "b": true, "d": "2026-01-02T03:04:05Z", "j": {"a": 1}}`,
		`{"s": null, "n": null, "f": 2.5, "b": null, "d": null, "j": [1, "x", 2.5, true, null, {"b": []}]}`,
		`{"id": "given", "n": -9007199254740993, "f": -1e300, "j": "text"}`,
		`{"j": 12}`, `{"j": 1.5}`, `{"j": false}`, `{"j": null}`,
	} {
		res := mustExec(t, s, tpl, "ev"+string(rune('a'+i)), &wire.Request{Op: wire.OpCreate, Data: json.RawMessage(data)})
		doc, err := s.db.Collection("things").FindOne(t.Context(), bson.D{{Key: "_id", Value: res.Key}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tpl.Fields {
			rv, err := doc.LookupErr(f.Stored)
			if err != nil {
				continue // left out
			}
			if got := bsonAlias[rv.Type]; !slices.Contains(storedTypes(f), got) {
				t.Errorf("%s: field %s stored as %s (%s), not one of %v", data, f.Name, got, rv.Type, storedTypes(f))
			}
		}
	}
}

// The check reads what the templates name, whatever else the database
// holds, and a template of another store kind is not its business.
func TestCheckScope(t *testing.T) {
	reg := shipped(t)
	profiles := reg.Get("profiles")
	s := generatedDB(t, profiles)
	run(t, s.db, bson.D{{Key: "create", Value: "unrelated"}})
	if diffs := checkSchema(t, s, profiles, reg.Get("users")); len(diffs) != 0 {
		t.Errorf("differences %v", diffs)
	}
	if diffs := checkSchema(t, s, reg.Get("users")); diffs != nil {
		t.Errorf("no MongoDB template: %v", diffs)
	}
	diffs := checkSchema(t, s, reg.Get("logs"), profiles)
	if len(diffs) != 1 || diffs[0].Object != "collection msLogs" {
		t.Errorf("logs without its objects: %v", diffs)
	}
}

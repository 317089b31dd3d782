package script_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/beds-project/beds/shared/store/mongo/script"
	"github.com/beds-project/beds/shared/testenv"
)

func TestParse(t *testing.T) {
	src := `// header: const spec = {"not": "this"}
{
const spec = {
  "collection": "a", // the collection
  "validator": {"$jsonSchema": {"description": "a // not a comment, \"quoted\""}},
  "indexes": [
    // the key: MongoDB's own
    {"key": {"x": 1, "y": -1}, "name": "ix_x", "unique": true},  // x, then y
    {"key": {"z": 1.5}, "name": "big", "expireAfterSeconds": 4294967296}
  ]
};
print("a // b");
}
  const spec = {"collection": "b", "validationLevel": "moderate", "validationAction": "warn", "indexes": []};
`
	got, err := script.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []script.Spec{
		{Collection: "a",
			Validator: bson.D{{Key: "$jsonSchema", Value: bson.D{{Key: "description", Value: `a // not a comment, "quoted"`}}}},
			Indexes: []bson.D{
				{{Key: "key", Value: bson.D{{Key: "x", Value: int32(1)}, {Key: "y", Value: int32(-1)}}}, {Key: "name", Value: "ix_x"}, {Key: "unique", Value: true}},
				{{Key: "key", Value: bson.D{{Key: "z", Value: 1.5}}}, {Key: "name", Value: "big"}, {Key: "expireAfterSeconds", Value: int64(4294967296)}},
			}},
		{Collection: "b", ValidationLevel: "moderate", ValidationAction: "warn"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}

	for _, tc := range []struct{ src, want string }{
		{"print(1);\n", "no spec"},
		{"const spec = {\"collection\": \"a\", \"capped\": true};\n", `line 1: spec: field "capped" is not one the script applies`},
		{"\n\nconst spec = {collection: \"a\"};\n", "line 3: spec is not JSON"},
		{"const spec = {\"collection\": \"a\",\n", "line 1: spec: the object does not end"},
		{"const spec = {\"indexes\": []};\n", "no collection"},
		{"const spec = {\"collection\": 7};\n", `field "collection" has the wrong type`},
		{"const spec = {\"collection\": \"a\", \"indexes\": [1]};\n", "each index is an object"},
		{"const spec = [];\n", "not an object"},
	} {
		_, err := script.Parse([]byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.src, err, tc.want)
		}
	}
}

// A script's spec applies as its own code does under mongosh: the
// collection (without a validator on a server that has none), then its
// indexes, and a second time changes nothing.
func TestApply(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "001_a.js")
	src := `const spec = {"collection": "a",
  "validator": {"$jsonSchema": {"bsonType": "object", "required": ["n"]}},
  "validationLevel": "strict", "validationAction": "error",
  "indexes": [{"key": {"n": 1}, "name": "uq_n", "unique": true}, {"key": {"m": -1, "n": 1}, "name": "ix_m"}]};
`
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	uri := testenv.MongoWith(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	db := client.Database(strings.TrimPrefix(u.Path, "/"))
	if err := script.Apply(ctx, db, f); err != nil {
		t.Fatalf("applied again: %v", err)
	}
	cur, err := db.Collection("a").Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ixs []struct {
		Name   string `bson:"name"`
		Key    bson.D `bson:"key"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(ctx, &ixs); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ix := range ixs {
		got[ix.Name] = fmt.Sprint(ix.Key)
		if ix.Unique {
			got[ix.Name] += " unique"
		}
	}
	want := map[string]string{
		"_id_": `{"_id":{"$numberInt":"1"}}`,
		"uq_n": `{"n":{"$numberInt":"1"}} unique`,
		"ix_m": `{"m":{"$numberInt":"-1"},"n":{"$numberInt":"1"}}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("indexes %v, want %v", got, want)
	}

	// An index of the same name with other keys fails, naming the file.
	other := filepath.Join(dir, "002_a.js")
	if err := os.WriteFile(other, []byte(`const spec = {"collection": "a", "indexes": [{"key": {"o": 1}, "name": "ix_m"}]};`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := script.Apply(ctx, db, other); err == nil || !strings.Contains(err.Error(), "002_a.js: collection a: index") {
		t.Errorf("conflicting index: %v", err)
	}
}

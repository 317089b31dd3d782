package mongo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/store/mongo/script"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// The MongoDB objects bedsctl schema gen writes for a template, in one
// mongosh script: the collection the template's [objects] names, with a
// $jsonSchema validator, and its indexes.
//
// The script declares them in spec, a JSON document (with // comments)
// that a fixed block of the script then applies, so that the same file can
// be applied without mongosh (package script: tests, bedsctl schema
// apply): the DBA edits spec and keeps it JSON. Applying is idempotent:
// the collection is created with the validator when missing, an existing
// one gets the validator (collMod), and createIndexes makes the missing
// indexes, one at a time (FerretDB fails a createIndexes of several that
// all exist); an index of the same name with other keys or options fails
// the script.
//
// The validator describes what BEDS writes and reads, so that no other
// writer stores what a read would fail on. Each field is a property under
// its stored name:
//
//	string    bsonType string, maxLength max (when the template has one)
//	int       bsonType int or long: BEDS writes a long (int64); an int
//	          (NumberInt in mongosh) reads back the same. Not double: a
//	          fraction does not convert.
//	float     bsonType double, int or long: BEDS writes a double; reads
//	          convert the integers
//	bool      bsonType bool
//	datetime  bsonType date
//	json      any type: an object, an array or a scalar
//
// A field callers may leave out or set to null (any but the key and a
// required, writable field) also takes null. required lists the key and
// the required writable fields: the fields every create writes. Other
// fields are allowed (additionalProperties is not set): BEDS stamps every
// document it writes with _beds_event, and the DBA may keep fields of
// their own. validationLevel strict and validationAction error refuse a
// write that breaks the validator, which BEDS answers bad_value; a DBA
// applying it to a collection that holds older documents may choose
// moderate or warn while they are mended.
//
// The key is stored as _id unless the template names another stored
// name; a string key a create leaves out is the event ID, so the generator
// refuses a max below lineage.MaxLen for it. Indexes (schema.Indexes): a
// key stored as _id has MongoDB's own unique index; a key stored under another name gets uq_<stored>, unique, as
// does each unique field; each other sortable or joined field gets
// ix_<stored>. All ascending on the one field. MongoDB counts a missing
// field as null, so a unique index on a field callers may leave out admits
// one document without it; the DBA makes it partial where more need to
// (partialFilterExpression, which FerretDB does not support).
//
// FerretDB, the MongoDB-wire server of the tests, has no validators: it
// answers create with a validator, and collMod, NotImplemented (code 238).
// The script then creates the collection without one and says so.

// GenerateSchema returns the mongosh script that creates the collection
// serving t, its validator and its indexes, with the header of
// schema.Header. The text is deterministic: the same template gives the
// same bytes. An error says which field the generator cannot write and
// what to change.
func GenerateSchema(t *template.Template) ([]byte, error) {
	if t.StoreKind != template.StoreMongo {
		return nil, fmt.Errorf("template %s (%s): it is stored in %s (store kind %s), not MongoDB", t.Name, t.File, t.Store, t.StoreKind)
	}
	k := t.Key
	if eventKeyed(t) && k.Max > 0 && k.Max < lineage.MaxLen {
		return nil, fmt.Errorf("template %s (%s): field %s: a create that leaves the key out stores its event ID as the key, up to %d characters; set max to at least %d, or make the key required", t.Name, t.File, k.Name, lineage.MaxLen, lineage.MaxLen)
	}
	var b bytes.Buffer
	b.WriteString(schema.Header(t, "// "))
	b.WriteString("//\n")
	b.WriteString("// Apply it with mongosh on the database the store's URI names:\n")
	b.WriteString("//   mongosh \"mongodb://HOST:27017/DATABASE\" THIS_FILE.js\n")
	b.WriteString("// (the mongo image runs deploy/mongo/*.js itself, on MONGO_INITDB_DATABASE).\n")
	b.WriteString("// Applied again it changes nothing.\n")
	b.WriteString("//\n")
	writeJSComment(&b, "spec is what the script applies: the collection, its validator (what BEDS writes and reads, field by field; other fields are allowed, as BEDS stamps each document with _beds_event), and the indexes the template needs. Keep spec JSON (// comments allowed) when editing: tests and bedsctl schema apply read it without mongosh. A server without validators (FerretDB) gets the collection and the indexes, and the script says so.")
	b.WriteString("{\nconst spec = {\n")
	fmt.Fprintf(&b, "  \"collection\": %s,\n", jsonString(t.Objects.Collection))
	writeValidator(&b, t)
	b.WriteString("  \"validationLevel\": \"strict\",\n")
	b.WriteString("  \"validationAction\": \"error\",\n")
	writeIndexes(&b, t)
	b.WriteString("};\n")
	b.WriteString(applyJS)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// eventKeyed reports whether a create may leave t's key out, so that the
// adapter stores the event ID as the key.
func eventKeyed(t *template.Template) bool {
	return t.Allows(wire.OpCreate) && t.Key.Type == template.TypeString && !t.Key.Required
}

// applyJS applies spec; see the comment at the top of this file.
const applyJS = `// Apply spec: the collection with its validator (collMod when it exists),
// then the indexes. A server without validators answers NotImplemented
// (code 238, FerretDB): the collection is made without one.
const exists = db.getCollectionInfos({ name: spec.collection }).length > 0;
const rules = {};
for (const k of ["validator", "validationLevel", "validationAction"]) {
  if (k in spec) rules[k] = spec[k];
}
try {
  if (!exists) {
    db.createCollection(spec.collection, rules);
  } else if (Object.keys(rules).length > 0) {
    db.runCommand(Object.assign({ collMod: spec.collection }, rules));
  }
} catch (e) {
  if (e.code !== 238) throw e;
  print(spec.collection + ": this server does not support validators (" + e.message + "): the collection has none");
  if (!exists) db.createCollection(spec.collection);
}
for (const ix of spec.indexes) {
  db.runCommand({ createIndexes: spec.collection, indexes: [ix] }); // one at a time: FerretDB fails on several that exist
}
print(spec.collection + ": the collection and its " + spec.indexes.length + " indexes are in place");
`

// writeJSComment writes text as // comment lines of at most 78 characters.
func writeJSComment(b *bytes.Buffer, text string) {
	line := "//"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > 78 && line != "//" {
			b.WriteString(line + "\n")
			line = "//"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// bsonTypes returns the BSON types the validator admits for f's values,
// nil for any (json).
func bsonTypes(f *template.Field) []string {
	var ts []string
	switch f.Type {
	case template.TypeString:
		ts = []string{"string"}
	case template.TypeInt:
		ts = []string{"int", "long"}
	case template.TypeFloat:
		ts = []string{"double", "int", "long"}
	case template.TypeBool:
		ts = []string{"bool"}
	case template.TypeDatetime:
		ts = []string{"date"}
	default:
		return nil
	}
	if nullable(f) {
		ts = append(ts, "null")
	}
	return ts
}

// nullable reports whether f may hold null (or be missing): every field
// but the key and a required field callers write.
func nullable(f *template.Field) bool { return !f.Key && !(f.Required && !f.Readonly) }

// requiredStored lists the stored names every create writes: the key's
// and those of the required writable fields.
func requiredStored(t *template.Template) []string {
	out := []string{t.Key.Stored}
	for _, f := range t.Fields {
		if !f.Key && f.Required && !f.Readonly {
			out = append(out, f.Stored)
		}
	}
	return out
}

// describe is a property's description: what the template says of f.
func describe(t *template.Template, f *template.Field) string {
	parts := []string{string(f.Type)}
	switch {
	case f.Key && eventKeyed(t):
		parts = append(parts, "the key (the event ID when a create leaves it out)")
	case f.Key:
		parts = append(parts, "the key")
	case f.Readonly:
		parts = append(parts, "readonly (BEDS never writes it)")
	case f.Required:
		parts = append(parts, "required")
	}
	return "field " + f.Name + ": " + strings.Join(parts, ", ")
}

func writeValidator(b *bytes.Buffer, t *template.Template) {
	b.WriteString("  \"validator\": {\"$jsonSchema\": {\n")
	b.WriteString("    \"bsonType\": \"object\",\n")
	req := requiredStored(t)
	quoted := make([]string, len(req))
	for i, r := range req {
		quoted[i] = jsonString(r)
	}
	fmt.Fprintf(b, "    \"required\": [%s],\n", strings.Join(quoted, ", "))
	b.WriteString("    \"properties\": {\n")
	width := 0
	for _, f := range t.Fields {
		width = max(width, len(jsonString(f.Stored))+1)
	}
	for i, f := range t.Fields {
		var kv []string
		switch ts := bsonTypes(f); len(ts) {
		case 0:
		case 1:
			kv = append(kv, "\"bsonType\": "+jsonString(ts[0]))
		default:
			q := make([]string, len(ts))
			for j, s := range ts {
				q[j] = jsonString(s)
			}
			kv = append(kv, "\"bsonType\": ["+strings.Join(q, ", ")+"]")
		}
		if f.Type == template.TypeString && f.Max > 0 {
			kv = append(kv, fmt.Sprintf("\"maxLength\": %d", f.Max))
		}
		kv = append(kv, "\"description\": "+jsonString(describe(t, f)))
		sep := ","
		if i == len(t.Fields)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "      %-*s {%s}%s\n", width, jsonString(f.Stored)+":", strings.Join(kv, ", "), sep)
	}
	b.WriteString("    }\n")
	b.WriteString("  }},\n")
}

// indexName is the name the generator gives ix: uq_<stored> for a unique
// index, ix_<stored> for another.
func indexName(ix schema.Index) string {
	if ix.Unique {
		return "uq_" + ix.Field.Stored
	}
	return "ix_" + ix.Field.Stored
}

func writeIndexes(b *bytes.Buffer, t *template.Template) {
	type line struct{ text, note string }
	var lines []line
	var notes []string // comment lines before the list
	for _, ix := range schema.Indexes(t) {
		f := ix.Field
		if f.Stored == idKey {
			notes = append(notes, fmt.Sprintf("%s, field %s (%s): MongoDB's own unique index", idKey, f.Name, ix.Why))
			continue
		}
		text := fmt.Sprintf("{\"key\": {%s: 1}, \"name\": %s", jsonString(f.Stored), jsonString(indexName(ix)))
		if ix.Unique {
			text += ", \"unique\": true"
		}
		text += "}"
		note := fmt.Sprintf("field %s: %s", f.Name, ix.Why)
		if ix.Unique && nullable(f) {
			note += "; a missing value counts as null, so one document may lack it (more: make it partial)"
		}
		lines = append(lines, line{text, note})
	}
	if len(lines) == 0 {
		b.WriteString("  \"indexes\": [")
		for _, n := range notes {
			b.WriteString("\n    // " + n)
		}
		if len(notes) > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString("]\n")
		return
	}
	b.WriteString("  \"indexes\": [\n")
	for _, n := range notes {
		b.WriteString("    // " + n + "\n")
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l.text)+1)
	}
	for i, l := range lines {
		text := l.text
		if i < len(lines)-1 {
			text += ","
		}
		fmt.Fprintf(b, "    %-*s  // %s\n", width, text, l.note)
	}
	b.WriteString("  ]\n")
}

// ApplyScripts applies script files of bedsctl schema gen's format to the
// store's database without mongosh, as their own code does under mongosh
// (package script): for bedsctl schema apply, on machines without mongosh.
func (s *Store) ApplyScripts(ctx context.Context, files ...string) error {
	if err := script.Apply(ctx, s.db, files...); err != nil {
		return fmt.Errorf("database %s: %w", s.Database(), classify(nil, err))
	}
	return nil
}

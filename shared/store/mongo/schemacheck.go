package mongo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

var _ schema.Checker = (*Store)(nil)

// CheckSchema implements schema.Checker: it compares the store's database
// with the MongoDB templates of ts (listCollections, listIndexes) and
// reports as a Difference
//
//   - a collection that is missing, or is a view while the template writes;
//   - a field of schema.Indexes (other than a key stored as _id, which
//     MongoDB indexes uniquely itself) without an index serving it: for a
//     unique one (the key stored elsewhere, a unique field) a unique index
//     on the field alone, partial or sparse or not (how documents without
//     the field count is the DBA's choice); for a sortable or joined one an
//     index whose first key is the field, ascending or descending, neither
//     partial nor sparse (MongoDB does not use those for a sort of every
//     document);
//   - a validator that contradicts the template, where the template writes
//     (creates or updates) and the validator applies (validationLevel is
//     not off): its $jsonSchema requires a field the creates need not
//     write (not the key and not a required writable field; only when the
//     template allows create), gives a field a bsonType (or type) that
//     does not admit every value BEDS stores for it (the types of
//     GenerateSchema, and null where callers may leave the field out), a
//     maxLength below the field's max (or any, for a string without one),
//     or refuses other fields (additionalProperties false) while lacking a
//     property for a field or for _beds_event.
//
// Only the top-level $jsonSchema of a validator is read, and of it only
// required, properties (bsonType, type, maxLength) and
// additionalProperties; the rest (query operators beside it, enum,
// pattern, minimum, anyOf, ...) is the DBA's and not compared. A
// collection without a validator has nothing to contradict: that includes
// every collection on FerretDB, which implements no validators (it answers
// create with one, and collMod, NotImplemented), so on FerretDB the check
// compares collections and indexes only. A view's indexes are not visible
// through it and are not checked.
func (s *Store) CheckSchema(ctx context.Context, ts []*template.Template) ([]schema.Difference, error) {
	var mine []*template.Template
	var names []string
	for _, t := range ts {
		if t.StoreKind != template.StoreMongo {
			continue
		}
		mine = append(mine, t)
		if !slices.Contains(names, t.Objects.Collection) {
			names = append(names, t.Objects.Collection)
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	colls, err := s.readCollections(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("schema check of database %s: %w", s.Database(), classify(nil, err))
	}
	var diffs []schema.Difference
	for _, t := range mine {
		diffs = append(diffs, checkTemplate(t, colls[t.Objects.Collection])...)
	}
	schema.Sort(diffs)
	return diffs, nil
}

// dbCollection is what listCollections and listIndexes say of a
// collection.
type dbCollection struct {
	kind            string   // "collection", "view", "timeseries"
	validator       bson.Raw // nil: none
	validationLevel string
	indexes         []dbIndex
}

// dbIndex is one index of listIndexes.
type dbIndex struct {
	name    string
	keys    bson.D // in key order
	unique  bool
	partial bool // partialFilterExpression
	sparse  bool
}

// readCollections reads the collections of names that exist, and their
// indexes: one listCollections and one listIndexes per collection.
func (s *Store) readCollections(ctx context.Context, names []string) (map[string]*dbCollection, error) {
	cur, err := s.db.ListCollections(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: names}}}})
	if err != nil {
		return nil, fmt.Errorf("listCollections: %w", err)
	}
	var infos []struct {
		Name    string `bson:"name"`
		Type    string `bson:"type"`
		Options struct {
			Validator       bson.Raw `bson:"validator"`
			ValidationLevel string   `bson:"validationLevel"`
		} `bson:"options"`
	}
	if err := cur.All(ctx, &infos); err != nil {
		return nil, fmt.Errorf("listCollections: %w", err)
	}
	out := map[string]*dbCollection{}
	for _, info := range infos {
		c := &dbCollection{kind: info.Type, validator: info.Options.Validator, validationLevel: info.Options.ValidationLevel}
		out[info.Name] = c
		if c.kind == "view" {
			continue
		}
		icur, err := s.db.Collection(info.Name).Indexes().List(ctx)
		if err != nil {
			return nil, fmt.Errorf("listIndexes %s: %w", info.Name, err)
		}
		var ixs []struct {
			Name    string   `bson:"name"`
			Key     bson.D   `bson:"key"`
			Unique  bool     `bson:"unique"`
			Sparse  bool     `bson:"sparse"`
			Partial bson.Raw `bson:"partialFilterExpression"`
		}
		if err := icur.All(ctx, &ixs); err != nil {
			return nil, fmt.Errorf("listIndexes %s: %w", info.Name, err)
		}
		for _, ix := range ixs {
			c.indexes = append(c.indexes, dbIndex{name: ix.Name, keys: ix.Key, unique: ix.Unique || ix.Name == "_id_", partial: ix.Partial != nil, sparse: ix.Sparse})
		}
	}
	return out, nil
}

// writes reports whether t writes documents: creates or updates them,
// which is what a validator sees.
func writes(t *template.Template) bool { return t.Allows(wire.OpCreate) || t.Allows(wire.OpUpdate) }

// checkTemplate returns the differences of one template with its
// collection c (nil: missing).
func checkTemplate(t *template.Template, c *dbCollection) []schema.Difference {
	var diffs []schema.Difference
	object := "collection " + t.Objects.Collection
	add := func(expected, found string) {
		diffs = append(diffs, schema.Difference{Template: t.Name, Object: object, Expected: expected, Found: found})
	}
	var want []string
	for _, ix := range schema.Indexes(t) {
		if ix.Field.Stored != idKey {
			want = append(want, indexName(ix))
		}
	}
	switch {
	case c == nil:
		if len(want) == 0 {
			add("a collection", "none")
		} else {
			noun := "indexes"
			if len(want) == 1 {
				noun = "index"
			}
			add(fmt.Sprintf("a collection with %d %s (%s)", len(want), noun, strings.Join(want, ", ")), "none")
		}
		return diffs
	case c.kind == "view":
		if writes(t) {
			add("a collection (the template writes)", "a view")
		}
		return diffs
	}
	for _, ix := range schema.Indexes(t) {
		if ix.Field.Stored != idKey {
			checkIndex(ix, c.indexes, add)
		}
	}
	if c.validator != nil && c.validationLevel != "off" && writes(t) {
		checkValidator(t, c.validator, add)
	}
	return diffs
}

// direction reports whether v is an ascending or descending index key (1
// or -1, of any numeric type), not a special one ("hashed", "text", ...).
func direction(v any) bool {
	switch n := v.(type) {
	case int32:
		return n == 1 || n == -1
	case int64:
		return n == 1 || n == -1
	case float64:
		return n == 1 || n == -1
	}
	return false
}

// describeIndex names an index and its keys for Found.
func describeIndex(ix dbIndex) string {
	keys := make([]string, len(ix.keys))
	for i, k := range ix.keys {
		keys[i] = fmt.Sprintf("%s %v", k.Key, k.Value)
	}
	var attrs []string
	if ix.unique {
		attrs = append(attrs, "unique")
	} else {
		attrs = append(attrs, "not unique")
	}
	if ix.partial {
		attrs = append(attrs, "partial")
	}
	if ix.sparse {
		attrs = append(attrs, "sparse")
	}
	return fmt.Sprintf("%s on %s (%s)", ix.name, strings.Join(keys, ", "), strings.Join(attrs, ", "))
}

// checkIndex reports ix when none of indexes serves it.
func checkIndex(ix schema.Index, indexes []dbIndex, add func(expected, found string)) {
	f := ix.Field
	var found []string
	name := indexName(ix)
	for _, d := range indexes {
		starts := len(d.keys) > 0 && d.keys[0].Key == f.Stored && direction(d.keys[0].Value)
		if !starts {
			if d.name == name {
				found = append(found, describeIndex(d))
			}
			continue
		}
		if (ix.Unique && d.unique && len(d.keys) == 1) || (!ix.Unique && !d.partial && !d.sparse) {
			return
		}
		found = append(found, describeIndex(d))
	}
	want := fmt.Sprintf("an index starting with %s, neither partial nor sparse (field %s: %s)", f.Stored, f.Name, ix.Why)
	if ix.Unique {
		want = fmt.Sprintf("a unique index on %s alone (field %s: %s)", f.Stored, f.Name, ix.Why)
	}
	got := "none"
	if len(found) > 0 {
		got = strings.Join(found, "; ")
	}
	add(want, got)
}

// storedTypes returns the BSON types of the values BEDS stores in f: what
// a validator must admit. json values are any of what a JSON value
// becomes (convert.go).
func storedTypes(f *template.Field) []string {
	var ts []string
	switch f.Type {
	case template.TypeString:
		ts = []string{"string"}
	case template.TypeInt:
		ts = []string{"long"}
	case template.TypeFloat:
		ts = []string{"double"}
	case template.TypeBool:
		ts = []string{"bool"}
	case template.TypeDatetime:
		ts = []string{"date"}
	default:
		ts = []string{"object", "array", "string", "long", "double", "bool"}
	}
	if nullable(f) {
		ts = append(ts, "null")
	}
	return ts
}

// typeAliases expands a bsonType alias and the JSON Schema type names
// ($jsonSchema's type keyword) to BSON types.
var typeAliases = map[string][]string{
	"number":  {"int", "long", "double", "decimal"},
	"boolean": {"bool"},
}

// admitted returns the BSON types a property admits, and false when it
// does not restrict them (no bsonType and no type).
func admitted(prop bson.Raw) ([]string, bool) {
	var out []string
	restricted := false
	for _, kw := range []string{"bsonType", "type"} {
		v, err := prop.LookupErr(kw)
		if err != nil {
			continue
		}
		restricted = true
		var names []string
		if s, ok := v.StringValueOK(); ok {
			names = []string{s}
		} else if arr, ok := v.ArrayOK(); ok {
			vals, _ := arr.Values()
			for _, e := range vals {
				if s, ok := e.StringValueOK(); ok {
					names = append(names, s)
				}
			}
		}
		for _, n := range names {
			if alias, ok := typeAliases[n]; ok {
				out = append(out, alias...)
			} else {
				out = append(out, n)
			}
		}
	}
	return out, restricted
}

// checkValidator reports what of the $jsonSchema of validator contradicts
// t (see CheckSchema).
func checkValidator(t *template.Template, validator bson.Raw, add func(expected, found string)) {
	js, err := validator.LookupErr("$jsonSchema")
	if err != nil {
		return // a validator of query operators only: the DBA's
	}
	doc, ok := js.DocumentOK()
	if !ok {
		return
	}
	byStored := map[string]*template.Field{}
	for _, f := range t.Fields {
		byStored[f.Stored] = f
	}
	if req, err := doc.LookupErr("required"); err == nil && t.Allows(wire.OpCreate) {
		written := requiredStored(t)
		if arr, ok := req.ArrayOK(); ok {
			vals, _ := arr.Values()
			for _, v := range vals {
				name, _ := v.StringValueOK()
				if slices.Contains(written, name) {
					continue
				}
				why := "no field of the template: a create never writes it"
				if f := byStored[name]; f != nil && f.Readonly {
					why = fmt.Sprintf("field %s is readonly: BEDS never writes it", f.Name)
				} else if f != nil {
					why = fmt.Sprintf("field %s is not required: a create may leave it out", f.Name)
				}
				add(fmt.Sprintf("a validator that does not require %s (%s)", name, why), "required "+name)
			}
		}
	}
	props, _ := doc.Lookup("properties").DocumentOK()
	for _, f := range t.Fields {
		if props == nil {
			break
		}
		pv, err := props.LookupErr(f.Stored)
		if err != nil {
			continue
		}
		prop, ok := pv.DocumentOK()
		if !ok {
			continue
		}
		if got, restricted := admitted(prop); restricted {
			var missing []string
			for _, st := range storedTypes(f) {
				if !slices.Contains(got, st) {
					missing = append(missing, st)
				}
			}
			if len(missing) > 0 {
				add(fmt.Sprintf("property %s admitting %s (field %s, %s, as BEDS stores it)", f.Stored, strings.Join(storedTypes(f), ", "), f.Name, f.Type),
					fmt.Sprintf("property %s without %s", f.Stored, strings.Join(missing, ", ")))
			}
		}
		if f.Type == template.TypeString {
			if ml, err := prop.LookupErr("maxLength"); err == nil {
				n, ok := ml.AsInt64OK()
				if !ok {
					if d, isDouble := ml.DoubleOK(); isDouble {
						n, ok = int64(d), true
					}
				}
				if ok && (f.Max == 0 || n < int64(f.Max)) {
					want := fmt.Sprintf("property %s admitting strings of any length (field %s has no max)", f.Stored, f.Name)
					if f.Max > 0 {
						want = fmt.Sprintf("property %s admitting strings of %d characters (field %s, max %d)", f.Stored, f.Max, f.Name, f.Max)
					}
					add(want, fmt.Sprintf("property %s with maxLength %d", f.Stored, n))
				}
			}
		}
	}
	if ap, err := doc.LookupErr("additionalProperties"); err == nil {
		if b, ok := ap.BooleanOK(); ok && !b {
			need := []string{idKey}
			for _, f := range t.Fields {
				if f.Stored != idKey {
					need = append(need, f.Stored)
				}
			}
			need = append(need, stampField)
			for _, n := range need {
				if props != nil {
					if _, err := props.LookupErr(n); err == nil {
						continue
					}
				}
				why := "BEDS's event stamp, on every document it writes"
				if f := byStored[n]; f != nil {
					why = "field " + f.Name
				} else if n == idKey {
					why = "every document has one"
				}
				add(fmt.Sprintf("a validator admitting %s (%s)", n, why), "additionalProperties false without a property "+n)
			}
		}
	}
}

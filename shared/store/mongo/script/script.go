// Package script reads and applies the MongoDB scripts of deploy/mongo
// without mongosh.
//
// bedsctl schema gen writes, for each MongoDB template, a mongosh script
// (mongo.GenerateSchema) that declares the collection, its validator and
// its indexes as spec, a JSON object with // comments, and applies it with
// code of its own. This package reads spec (Parse) and applies it the way
// that code does (Apply), so that tests (shared/testenv) and bedsctl schema
// apply put the same checked-in files into a database on a machine without
// mongosh. The DBA who edits a script keeps spec JSON; the rest of the
// script is not read here.
package script

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Spec is what a script declares: one collection, its validator and its
// indexes.
type Spec struct {
	Collection       string
	Validator        bson.D // nil: none
	ValidationLevel  string
	ValidationAction string
	// Indexes are createIndexes index documents: key, name, unique, ...
	Indexes []bson.D
}

// specRE finds a spec declaration: a line starting with const spec = .
var specRE = regexp.MustCompile(`(?m)^[ \t]*const spec = `)

// Parse reads the specs a script declares, each as "const spec = " at the
// start of a line followed by a JSON object, which may carry // comments.
// Everything else in the script (its comments, the code that applies spec)
// is not read. A script without a spec is an error.
func Parse(src []byte) ([]Spec, error) {
	var out []Spec
	for _, m := range specRE.FindAllIndex(src, -1) {
		line := 1 + bytes.Count(src[:m[0]], []byte("\n"))
		text, err := stripComments(src[m[1]:])
		if err != nil {
			return nil, fmt.Errorf("line %d: spec: %w", line, err)
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		v, err := decodeJSON(dec)
		if err != nil {
			return nil, fmt.Errorf("line %d: spec is not JSON (keep it JSON when editing it): %w", line, err)
		}
		doc, ok := v.(bson.D)
		if !ok {
			return nil, fmt.Errorf("line %d: spec is not an object", line)
		}
		s, err := specOf(doc)
		if err != nil {
			return nil, fmt.Errorf("line %d: spec: %w", line, err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("no spec: a line starting with const spec = followed by its JSON object")
	}
	return out, nil
}

// specOf reads a spec's fields; another field is an error, since the
// script's code would not apply it.
func specOf(doc bson.D) (Spec, error) {
	var s Spec
	for _, e := range doc {
		var ok bool
		switch e.Key {
		case "collection":
			s.Collection, ok = e.Value.(string)
		case "validator":
			s.Validator, ok = e.Value.(bson.D)
		case "validationLevel":
			s.ValidationLevel, ok = e.Value.(string)
		case "validationAction":
			s.ValidationAction, ok = e.Value.(string)
		case "indexes":
			var list bson.A
			if list, ok = e.Value.(bson.A); ok {
				for _, ix := range list {
					d, isDoc := ix.(bson.D)
					if !isDoc {
						return s, errors.New("indexes: each index is an object")
					}
					s.Indexes = append(s.Indexes, d)
				}
			}
		default:
			return s, fmt.Errorf("field %q is not one the script applies (collection, validator, validationLevel, validationAction, indexes)", e.Key)
		}
		if !ok {
			return s, fmt.Errorf("field %q has the wrong type", e.Key)
		}
	}
	if s.Collection == "" {
		return s, errors.New("no collection")
	}
	return s, nil
}

// stripComments returns the JSON value at the start of src (after spaces)
// with its // comments removed, up to the end of the value.
func stripComments(src []byte) ([]byte, error) {
	var out []byte
	depth, inString, escaped, started := 0, false, false, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			out = append(out, '\n')
			continue
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			started = true
		case c == '}' || c == ']':
			depth--
		}
		out = append(out, c)
		if started && depth == 0 {
			return out, nil
		}
	}
	return nil, errors.New("the object does not end")
}

// decodeJSON reads one JSON value, keeping the order of object keys
// (bson.D), with integers as int32 where they fit, else int64, and other
// numbers as doubles, as mongosh sends what it reads.
func decodeJSON(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '{':
			d := bson.D{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeJSON(dec)
				if err != nil {
					return nil, err
				}
				d = append(d, bson.E{Key: k.(string), Value: v})
			}
			_, err := dec.Token()
			return d, err
		case '[':
			a := bson.A{}
			for dec.More() {
				v, err := decodeJSON(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return int32(n), nil
			}
			return n, nil
		}
		return x.Float64()
	}
	return tok, nil
}

// Apply applies the specs of script files to db, in order, as the
// scripts' own code does under mongosh: the collection is created with its
// validator, or given it (collMod) when it exists; a server that does not
// implement validators (FerretDB) gets the collection without one; then
// each index is created, one at a time. Applied again, it changes nothing;
// an index whose name is taken by other keys or options fails it.
func Apply(ctx context.Context, db *mongo.Database, files ...string) error {
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		specs, err := Parse(src)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, s := range specs {
			if err := applySpec(ctx, db, s); err != nil {
				return fmt.Errorf("%s: collection %s: %w", file, s.Collection, err)
			}
		}
	}
	return nil
}

// notImplemented is the error code of a command or option a server does
// not implement (FerretDB's answer to validators and collMod).
const notImplemented = 238

func applySpec(ctx context.Context, db *mongo.Database, s Spec) error {
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: s.Collection}})
	if err != nil {
		return err
	}
	exists := len(names) > 0
	rules := bson.D{}
	if s.Validator != nil {
		rules = append(rules, bson.E{Key: "validator", Value: s.Validator})
	}
	if s.ValidationLevel != "" {
		rules = append(rules, bson.E{Key: "validationLevel", Value: s.ValidationLevel})
	}
	if s.ValidationAction != "" {
		rules = append(rules, bson.E{Key: "validationAction", Value: s.ValidationAction})
	}
	switch {
	case !exists:
		err = db.RunCommand(ctx, append(bson.D{{Key: "create", Value: s.Collection}}, rules...)).Err()
	case len(rules) > 0:
		err = db.RunCommand(ctx, append(bson.D{{Key: "collMod", Value: s.Collection}}, rules...)).Err()
	}
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(notImplemented) {
		err = nil
		if !exists {
			err = db.CreateCollection(ctx, s.Collection)
		}
	}
	if err != nil {
		return err
	}
	for _, ix := range s.Indexes {
		if err := db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: s.Collection}, {Key: "indexes", Value: bson.A{ix}}}).Err(); err != nil {
			return fmt.Errorf("index %v: %w", ix, err)
		}
	}
	return nil
}

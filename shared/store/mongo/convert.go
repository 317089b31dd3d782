package mongo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// maxJSONDepth bounds the nesting of a json field's value; MongoDB refuses
// documents nested deeper than 100 levels, and this keeps a margin for the
// document around the value.
const maxJSONDepth = 90

// toBSON converts a query value of field f (a Go value from store.Build) to
// what the driver encodes. Scalars encode natively (int64 as a 64-bit
// integer, time.Time as a BSON date); a json value becomes a document or
// array with its object keys in sorted order, after a check that every key
// is storable.
func toBSON(f *template.Field, v any) (any, error) {
	if v == nil || f.Type != template.TypeJSON {
		return v, nil
	}
	return jsonToBSON(f, v, 1)
}

func jsonToBSON(f *template.Field, v any, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s nests deeper than %d levels", f.Name, maxJSONDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			if k == "" || k[0] == '$' || strings.ContainsAny(k, ".\x00") {
				return nil, wire.FieldError(wire.CodeBadValue, f.Name,
					"field %s: object key %q cannot be stored: keys must be non-empty, must not start with $ and must not contain . or NUL", f.Name, k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := make(bson.D, len(keys))
		for i, k := range keys {
			e, err := jsonToBSON(f, x[k], depth+1)
			if err != nil {
				return nil, err
			}
			d[i] = bson.E{Key: k, Value: e}
		}
		return d, nil
	case []any:
		a := make(bson.A, len(x))
		for i, item := range x {
			e, err := jsonToBSON(f, item, depth+1)
			if err != nil {
				return nil, err
			}
			a[i] = e
		}
		return a, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		return x.Float64()
	case json.RawMessage:
		dec := json.NewDecoder(bytes.NewReader(x))
		dec.UseNumber()
		var d any
		if err := dec.Decode(&d); err != nil {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is not valid JSON", f.Name)
		}
		return jsonToBSON(f, d, depth)
	}
	return v, nil
}

// fromBSON converts a stored value of field f to the field's Go type:
// int64, float64, bool, string, time.Time in UTC, or for json a plain Go
// value (map[string]any, []any, int64, float64, string, bool, nil). Null
// and undefined become nil. Conversions are lossless only: an int field
// accepts 32- and 64-bit integers and integral doubles, a string field
// also accepts an ObjectID (as its hex form), a datetime field a BSON date,
// timestamp or RFC 3339 string. Anything else is an error naming the field,
// since the collection then holds data the template does not describe.
func fromBSON(f *template.Field, rv bson.RawValue) (any, error) {
	if rv.Type == bson.TypeNull || rv.Type == bson.TypeUndefined {
		return nil, nil
	}
	switch f.Type {
	case template.TypeInt:
		switch rv.Type {
		case bson.TypeInt32:
			return int64(rv.Int32()), nil
		case bson.TypeInt64:
			return rv.Int64(), nil
		case bson.TypeDouble:
			x := rv.Double()
			if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
				return int64(x), nil
			}
		}
	case template.TypeFloat:
		switch rv.Type {
		case bson.TypeDouble:
			return rv.Double(), nil
		case bson.TypeInt32:
			return float64(rv.Int32()), nil
		case bson.TypeInt64:
			return float64(rv.Int64()), nil
		}
	case template.TypeBool:
		if b, ok := rv.BooleanOK(); ok {
			return b, nil
		}
	case template.TypeString:
		switch rv.Type {
		case bson.TypeString:
			return rv.StringValue(), nil
		case bson.TypeObjectID:
			return rv.ObjectID().Hex(), nil
		case bson.TypeSymbol:
			return rv.Symbol(), nil
		}
	case template.TypeDatetime:
		switch rv.Type {
		case bson.TypeDateTime:
			return time.UnixMilli(rv.DateTime()).UTC(), nil
		case bson.TypeTimestamp:
			t, _ := rv.Timestamp()
			return time.Unix(int64(t), 0).UTC(), nil
		case bson.TypeString:
			if ts, err := time.Parse(time.RFC3339Nano, rv.StringValue()); err == nil {
				return ts.UTC(), nil
			}
		}
	case template.TypeJSON:
		return plainValue(rv)
	}
	return nil, fmt.Errorf("field %s (%s): stored value has BSON type %s, which does not convert to %s", f.Name, f.Stored, rv.Type, f.Type)
}

// plainValue converts any BSON value to a plain Go value that encodes as
// JSON: documents to map[string]any, arrays to []any, numbers to int64 or
// float64, dates to time.Time, ObjectIDs and decimals to strings.
func plainValue(rv bson.RawValue) (any, error) {
	switch rv.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return nil, nil
	case bson.TypeEmbeddedDocument:
		elems, err := rv.Document().Elements()
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(elems))
		for _, e := range elems {
			v, err := plainValue(e.Value())
			if err != nil {
				return nil, err
			}
			m[e.Key()] = v
		}
		return m, nil
	case bson.TypeArray:
		vals, err := rv.Array().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(vals))
		for i, item := range vals {
			if out[i], err = plainValue(item); err != nil {
				return nil, err
			}
		}
		return out, nil
	case bson.TypeString:
		return rv.StringValue(), nil
	case bson.TypeInt32:
		return int64(rv.Int32()), nil
	case bson.TypeInt64:
		return rv.Int64(), nil
	case bson.TypeDouble:
		return rv.Double(), nil
	case bson.TypeBoolean:
		return rv.Boolean(), nil
	case bson.TypeDateTime:
		return time.UnixMilli(rv.DateTime()).UTC(), nil
	case bson.TypeObjectID:
		return rv.ObjectID().Hex(), nil
	case bson.TypeDecimal128:
		return rv.Decimal128().String(), nil
	case bson.TypeBinary:
		_, data := rv.Binary()
		return slices.Clone(data), nil
	case bson.TypeSymbol:
		return rv.Symbol(), nil
	}
	return nil, fmt.Errorf("stored value has BSON type %s, which has no JSON form", rv.Type)
}

// decodeRow converts one stored document into a reply row keyed by plain
// field names; a field the document lacks is nil. Each field is looked up
// in the document's bytes, which for a record's handful of fields costs
// less than indexing its elements.
func decodeRow(doc bson.Raw, fields []*template.Field) (wire.Row, error) {
	row := make(wire.Row, len(fields))
	for _, f := range fields {
		rv, err := doc.LookupErr(f.Stored)
		if errors.Is(err, bsoncore.ErrElementNotFound) {
			row[f.Name] = nil
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := fromBSON(f, rv)
		if err != nil {
			if id, ierr := doc.LookupErr(idKey); ierr == nil {
				return nil, fmt.Errorf("document _id %s: %w", id, err)
			}
			return nil, err
		}
		row[f.Name] = v
	}
	return row, nil
}

package mongo

import (
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// filterDoc translates a validated filter into a MongoDB query document.
// A nil filter, or one with no conditions, matches every document.
//
// Keys of the result are stored names from the template or fixed operator
// names; every value is a typed Go value from store.Build, always under an
// explicit operator ($eq, $in, ...), so no value is ever read as an
// operator or a field path. A value MongoDB cannot hold where the filter
// puts it (a NUL in a like pattern) is the request's fault: bad_value.
func filterDoc(e *store.Expr) (bson.D, error) {
	if e == nil {
		return bson.D{}, nil
	}
	switch {
	case e.Cond != nil:
		return condDoc(e.Cond)
	case len(e.And) > 0:
		list, err := exprList(e.And)
		return bson.D{{Key: "$and", Value: list}}, err
	case len(e.Or) > 0:
		list, err := exprList(e.Or)
		return bson.D{{Key: "$or", Value: list}}, err
	}
	return bson.D{}, nil
}

func exprList(list []*store.Expr) (bson.A, error) {
	out := make(bson.A, len(list))
	for i, sub := range list {
		doc, err := filterDoc(sub)
		if err != nil {
			return nil, err
		}
		out[i] = doc
	}
	return out, nil
}

// mongoOps maps the comparison operators to fixed MongoDB operators.
var mongoOps = map[store.Operator]string{
	store.OpEq: "$eq", store.OpGt: "$gt", store.OpGte: "$gte",
	store.OpLt: "$lt", store.OpLte: "$lte", store.OpIn: "$in",
}

// condDoc builds {stored: {op: value}} for one condition, with the null
// semantics of SQL: a missing field counts as null, and ne, nin and like
// never match a null field.
func condDoc(c *store.Cond) (bson.D, error) {
	var op bson.E
	switch c.Op {
	case store.OpNull:
		if c.Value.(bool) {
			op = bson.E{Key: "$eq", Value: nil}
		} else {
			op = bson.E{Key: "$ne", Value: nil}
		}
	case store.OpEq:
		op = bson.E{Key: "$eq", Value: c.Value} // nil: null or missing
	case store.OpNe:
		if c.Value == nil {
			op = bson.E{Key: "$ne", Value: nil}
		} else {
			// {$ne: v} would also match null and missing fields; SQL's
			// col <> v does not.
			op = bson.E{Key: "$nin", Value: bson.A{c.Value, nil}}
		}
	case store.OpNin:
		list := c.Value.([]any)
		vals := make(bson.A, 0, len(list)+1)
		vals = append(vals, list...)
		op = bson.E{Key: "$nin", Value: append(vals, nil)} // as NOT IN: null never matches
	case store.OpIn:
		op = bson.E{Key: "$in", Value: bson.A(c.Value.([]any))}
	case store.OpLike:
		pattern := c.Value.(string)
		if strings.IndexByte(pattern, 0) >= 0 {
			// A BSON regular expression is a C string: the driver could
			// not even encode it.
			return nil, wire.FieldError(wire.CodeBadValue, c.Field.Name, "the like pattern on %s holds a NUL character", c.Field.Name)
		}
		op = bson.E{Key: "$regex", Value: bson.Regex{Pattern: likeRegex(pattern), Options: "s"}}
	default:
		op = bson.E{Key: mongoOps[c.Op], Value: c.Value}
	}
	return bson.D{{Key: c.Field.Stored, Value: bson.D{op}}}, nil
}

// likeRegex turns an SQL LIKE pattern into an anchored regular expression:
// % matches any run of characters, _ exactly one, a backslash makes the
// next character literal (MariaDB's default escape; a trailing backslash
// is itself literal) and every other character is quoted. The result is
// meant for the "s" option, so % and _ also match newlines.
func likeRegex(pattern string) string {
	var b strings.Builder
	b.Grow(len(pattern) + 8)
	b.WriteByte('^')
	lit := func(s string) { b.WriteString(regexp.QuoteMeta(s)) }
	for i := 0; i < len(pattern); {
		// Walk by byte: %, _ and \ are ASCII and never occur inside a
		// multi-byte UTF-8 sequence, so multi-byte characters are copied
		// (quoted) whole.
		switch ch := pattern[i]; ch {
		case '%':
			b.WriteString(".*")
			i++
		case '_':
			b.WriteByte('.')
			i++
		case '\\':
			if i+1 == len(pattern) {
				lit(`\`)
				i++
				continue
			}
			n := nextChar(pattern, i+1)
			lit(pattern[i+1 : n])
			i = n
		default:
			n := i + 1
			for n < len(pattern) && pattern[n] != '%' && pattern[n] != '_' && pattern[n] != '\\' {
				n++
			}
			lit(pattern[i:n])
			i = n
		}
	}
	// \z, not $: $ also matches before a final newline.
	b.WriteString(`\z`)
	return b.String()
}

// nextChar returns the index just past the UTF-8 character starting at i.
func nextChar(s string, i int) int {
	n := i + 1
	for n < len(s) && s[n]&0xC0 == 0x80 {
		n++
	}
	return n
}

// sortDoc translates sort keys into a sort document: 1 ascending, -1
// descending.
func sortDoc(keys []store.Sort) bson.D {
	out := make(bson.D, len(keys))
	for i, s := range keys {
		dir := 1
		if s.Desc {
			dir = -1
		}
		out[i] = bson.E{Key: s.Field.Stored, Value: dir}
	}
	return out
}

// projectionDoc includes the stored names of fields and excludes _id
// unless one of them is stored as _id.
func projectionDoc(fields []*template.Field) bson.D {
	out := make(bson.D, 0, len(fields)+1)
	hasID := false
	for _, f := range fields {
		out = append(out, bson.E{Key: f.Stored, Value: 1})
		hasID = hasID || f.Stored == idKey
	}
	if !hasID {
		out = append(out, bson.E{Key: idKey, Value: 0})
	}
	return out
}

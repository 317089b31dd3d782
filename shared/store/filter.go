package store

import (
	"cmp"
	"encoding/json"
	"slices"
	"unicode/utf8"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// parseFilter reads a request's filter: an object of field names to
// conditions, with "and" and "or" holding lists of such objects. Every
// object's entries must all hold.
func parseFilter(t *template.Template, raw json.RawMessage, lim Limits) (*Expr, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	d := openDoc(raw, "filter")
	defer d.close()
	if ok, err := d.open('{'); !ok {
		if err == nil {
			err = wire.FieldError(wire.CodeBadRequest, "filter", "filter must be an object of field names to conditions")
		}
		return nil, err
	}
	e, err := parseObject(t, d, lim, 1)
	if err != nil {
		return nil, err
	}
	return e, d.end()
}

// entry is one condition or and/or of a filter object, with what orders
// it among its siblings.
type entry struct {
	key  string   // field name, "and" or "or"
	op   Operator // the condition's operator
	expr *Expr
}

// parseObject reads a filter object's members after its '{', and returns
// nil for an empty one at the top level. Entries are ordered by field
// name and operator, not as sent, so the same filter always yields the
// same statement (and the same prepared statement).
func parseObject(t *template.Template, d *doc, lim Limits, depth int) (*Expr, error) {
	if depth > lim.MaxDepth {
		return nil, wire.FieldError(wire.CodeBadRequest, "filter", "filter nests deeper than %d levels", lim.MaxDepth)
	}
	var room [4]entry
	all := room[:0]
	for {
		name, err := d.token()
		if err != nil {
			return nil, err
		}
		if name.Kind() == '}' {
			break
		}
		switch name.String() {
		case "and":
			e, err := parseList(t, d, lim, depth, "and")
			if err != nil {
				return nil, err
			}
			all = append(all, entry{key: "and", expr: &Expr{And: e}})
		case "or":
			e, err := parseList(t, d, lim, depth, "or")
			if err != nil {
				return nil, err
			}
			all = append(all, entry{key: "or", expr: &Expr{Or: e}})
		default:
			f := t.Field(name.String())
			if f == nil {
				return nil, unknownField(t, name.String())
			}
			if all, err = appendConds(all, f, d, lim); err != nil {
				return nil, err
			}
		}
	}
	switch len(all) {
	case 0:
		if depth > 1 {
			// An empty object inside and/or would be an empty condition,
			// which SQL cannot express and MongoDB reads as "match
			// everything".
			return nil, wire.FieldError(wire.CodeBadRequest, "filter", "and/or hold an empty filter object")
		}
		return nil, nil
	case 1:
		return all[0].expr, nil
	}
	slices.SortFunc(all, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.op, b.op))
	})
	and := make([]*Expr, len(all))
	for i, e := range all {
		and[i] = e.expr
	}
	return &Expr{And: and}, nil
}

// parseList reads the non-empty array of filter objects of an and/or.
func parseList(t *template.Template, d *doc, lim Limits, depth int, key string) ([]*Expr, error) {
	if ok, err := d.open('['); !ok {
		if err == nil {
			err = wire.FieldError(wire.CodeBadRequest, "filter", "%s must be a non-empty array of filter objects", key)
		}
		return nil, err
	}
	var subs []*Expr
	for d.peek() != ']' {
		if ok, err := d.open('{'); !ok {
			if err == nil {
				err = wire.FieldError(wire.CodeBadRequest, "filter", "%s must hold filter objects", key)
			}
			return nil, err
		}
		sub, err := parseObject(t, d, lim, depth+1)
		if err != nil {
			return nil, err
		}
		subs = append(subs, sub)
	}
	if _, err := d.token(); err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return nil, wire.FieldError(wire.CodeBadRequest, "filter", "%s must be a non-empty array of filter objects", key)
	}
	return subs, nil
}

var operators = map[string]Operator{
	"eq": OpEq, "ne": OpNe, "gt": OpGt, "gte": OpGte, "lt": OpLt, "lte": OpLte,
	"in": OpIn, "nin": OpNin, "like": OpLike, "null": OpNull,
}

// appendConds reads a field's condition, a bare value (eq) or an object of
// operators that must all hold, and appends one entry per operator.
func appendConds(all []entry, f *template.Field, d *doc, lim Limits) ([]entry, error) {
	if d.peek() != '{' {
		c, err := parseCond(f, OpEq, d, lim)
		if err != nil {
			return nil, err
		}
		return append(all, entry{key: f.Name, op: OpEq, expr: &Expr{Cond: c}}), nil
	}
	if _, err := d.token(); err != nil {
		return nil, err
	}
	if d.peek() == '}' {
		return nil, wire.FieldError(wire.CodeBadRequest, f.Name, "condition on %s is empty", f.Name)
	}
	for {
		name, err := d.token()
		if err != nil {
			return nil, err
		}
		if name.Kind() == '}' {
			return all, nil
		}
		op, ok := operators[name.String()]
		if !ok {
			return nil, wire.FieldError(wire.CodeBadRequest, f.Name, "unknown operator %q on %s (eq ne gt gte lt lte in nin like null)", name.String(), f.Name)
		}
		c, err := parseCond(f, op, d, lim)
		if err != nil {
			return nil, err
		}
		all = append(all, entry{key: f.Name, op: op, expr: &Expr{Cond: c}})
	}
}

// parseCond reads the operand of one operator on field f.
func parseCond(f *template.Field, op Operator, d *doc, lim Limits) (*Cond, error) {
	c := &Cond{Field: f, Op: op}
	next := d.peek()
	if f.Type == template.TypeJSON && op != OpNull && !((op == OpEq || op == OpNe) && next == 'n') {
		return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is json: filter it with null only", f.Name)
	}
	switch op {
	case OpNull:
		s, err := d.scalar()
		if err != nil {
			return nil, err
		}
		if s.kind != 't' && s.kind != 'f' {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "null on %s takes true or false", f.Name)
		}
		c.Value = s.kind == 't'
	case OpIn, OpNin:
		if ok, err := d.open('['); !ok {
			if err == nil {
				err = wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s takes an array", op, f.Name)
			}
			return nil, err
		}
		vals, err := parseIn(f, op, d, lim)
		if err != nil {
			return nil, err
		}
		c.Value = vals
	case OpLike:
		s, err := d.scalar()
		if err != nil {
			return nil, err
		}
		if s.kind != '"' || f.Type != template.TypeString {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "like takes a string pattern on a string field")
		}
		if err := checkLike(f, s.str, lim); err != nil {
			return nil, err
		}
		c.Value = s.str
	case OpEq, OpNe:
		if next == 'n' {
			_, err := d.token()
			return c, err
		}
		fallthrough
	default:
		if next == 'n' {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s cannot compare with null: use null", op, f.Name)
		}
		if f.Type == template.TypeBool && op != OpEq && op != OpNe {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is bool: use eq or ne", f.Name)
		}
		v, err := convert(f, d)
		if err != nil {
			return nil, err
		}
		c.Value = v
	}
	return c, nil
}

// parseIn reads the values of an in or nin after the array's '[': at
// least one, at most lim.MaxInList, none null.
func parseIn(f *template.Field, op Operator, d *doc, lim Limits) ([]any, error) {
	var vals []any
	for n := 0; d.peek() != ']'; n++ {
		if n == lim.MaxInList {
			for ; d.peek() != ']'; n++ {
				if err := d.skip(); err != nil {
					return nil, err
				}
			}
			return nil, wire.FieldError(wire.CodeTooLarge, f.Name, "%s on %s has %d values: at most %d", op, f.Name, n, lim.MaxInList)
		}
		if d.peek() == 'n' {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s cannot hold null: use null", op, f.Name)
		}
		v, err := convert(f, d)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	if _, err := d.token(); err != nil {
		return nil, err
	}
	if len(vals) == 0 {
		return nil, wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s takes at least one value", op, f.Name)
	}
	return vals, nil
}

// checkLike bounds a like pattern: at most lim.MaxLikeLength characters and
// lim.MaxLikeWildcards wildcards (% and _ not escaped by a backslash), so
// that no caller hands the store a pattern that is costly to match.
// Both are too_large, like an in list over its bound: the pattern is well
// formed, and a smaller one is accepted.
func checkLike(f *template.Field, pattern string, lim Limits) error {
	if len(pattern) > lim.MaxLikeLength {
		if n := utf8.RuneCountInString(pattern); n > lim.MaxLikeLength {
			return wire.FieldError(wire.CodeTooLarge, f.Name, "like pattern on %s has %d characters: at most %d", f.Name, n, lim.MaxLikeLength)
		}
	}
	wild := 0
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			i++ // the next byte is literal; a multi-byte character's later bytes are never %, _ or \
		case '%', '_':
			wild++
		}
	}
	if wild > lim.MaxLikeWildcards {
		return wire.FieldError(wire.CodeTooLarge, f.Name, "like pattern on %s has %d wildcards (%% and _): at most %d; escape a literal %% or _ with a backslash", f.Name, wild, lim.MaxLikeWildcards)
	}
	return nil
}

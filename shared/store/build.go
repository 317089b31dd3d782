package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Build turns a decoded request into a Query for template t. Every problem
// comes back as a *wire.Error with the contract's code.
func Build(t *template.Template, event string, req *wire.Request, lim Limits) (*Query, error) {
	if !t.Allows(req.Op) {
		return nil, wire.Errorf(wire.CodeOpNotAllowed, "template %s does not allow %s (allowed: %s)", t.Name, req.Op, opList(t))
	}
	q := &Query{Event: event, Template: t, Op: req.Op}
	var err error
	if q.Filter, err = parseFilter(t, req.Filter, lim); err != nil {
		return nil, err
	}
	switch req.Op {
	case wire.OpRead:
		if q.Fields, err = parseFields(t, req.Fields); err != nil {
			return nil, err
		}
		if q.Sort, err = parseSort(t, req.Sort, lim); err != nil {
			return nil, err
		}
		q.Limit, q.Offset = req.Limit, req.Offset
		if q.Limit == 0 {
			q.Limit = lim.DefaultLimit
		}
		q.Limit = min(q.Limit, lim.MaxLimit)
	case wire.OpCount:
	case wire.OpCreate:
		if q.Filter != nil {
			return nil, wire.FieldError(wire.CodeBadRequest, "filter", "create takes no filter")
		}
		if q.Data, err = parseData(t, req.Op, req.Data); err != nil {
			return nil, err
		}
	case wire.OpUpdate, wire.OpDelete:
		if q.Filter == nil {
			return nil, wire.FieldError(wire.CodeBadRequest, "filter", "%s needs a filter: to change every record, say so with a filter that matches them", req.Op)
		}
		if req.Op == wire.OpUpdate {
			if q.Data, err = parseData(t, req.Op, req.Data); err != nil {
				return nil, err
			}
			if len(q.Data) == 0 {
				return nil, wire.FieldError(wire.CodeBadRequest, "data", "update needs data: the fields to set")
			}
		}
	}
	if req.Op != wire.OpRead && (len(req.Fields) > 0 || len(req.Sort) > 0 || req.Limit > 0 || req.Offset > 0) {
		return nil, wire.Errorf(wire.CodeBadRequest, "fields, sort, limit and offset apply to read only")
	}
	if req.Op != wire.OpCreate && req.Op != wire.OpUpdate && len(req.Data) > 0 && !isNull(req.Data) {
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "%s takes no data", req.Op)
	}
	return q, nil
}

func opList(t *template.Template) string {
	ops := t.AllowedOps()
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// decodeJSON decodes raw keeping numbers exact.
func decodeJSON(raw json.RawMessage, what string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, wire.FieldError(wire.CodeBadRequest, what, "%s is not valid JSON: %v", what, err)
	}
	return v, nil
}

func unknownField(t *template.Template, name string) *wire.Error {
	return wire.FieldError(wire.CodeBadField, name, "template %s has no field %q", t.Name, name)
}

func parseFields(t *template.Template, names []string) ([]*template.Field, error) {
	if len(names) == 0 {
		return t.Fields, nil
	}
	out := make([]*template.Field, 0, len(names))
	for _, n := range names {
		f := t.Field(n)
		if f == nil {
			return nil, unknownField(t, n)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func parseSort(t *template.Template, keys []string, lim Limits) ([]Sort, error) {
	if len(keys) > lim.MaxSort {
		return nil, wire.FieldError(wire.CodeTooLarge, "sort", "%d sort keys: at most %d", len(keys), lim.MaxSort)
	}
	out := make([]Sort, 0, len(keys))
	for _, k := range keys {
		s := Sort{}
		name := k
		switch {
		case strings.HasPrefix(k, "-"):
			s.Desc, name = true, k[1:]
		case strings.HasPrefix(k, "+"):
			name = k[1:]
		}
		if s.Field = t.Field(name); s.Field == nil {
			return nil, unknownField(t, name)
		}
		if s.Field.Type == template.TypeJSON {
			return nil, wire.FieldError(wire.CodeBadField, name, "field %s is json and cannot be sorted on", name)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseData(t *template.Template, op wire.Op, raw json.RawMessage) ([]Assign, error) {
	if len(raw) == 0 || isNull(raw) {
		if op == wire.OpCreate {
			return nil, missingRequired(t, nil)
		}
		return nil, nil
	}
	v, err := decodeJSON(raw, "data")
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "data must be an object of field names to values")
	}
	settable := settableFields(t, op)
	out := make([]Assign, 0, len(obj))
	// Sorted, so a request with several bad fields always names the same one.
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		val := obj[name]
		f := t.Field(name)
		switch {
		case f == nil:
			return nil, unknownField(t, name)
		case f.Readonly:
			return nil, wire.FieldError(wire.CodeBadField, name, "field %s is read-only", name)
		case f.Key && op == wire.OpUpdate:
			return nil, wire.FieldError(wire.CodeBadField, name, "field %s is the key and cannot be changed; select the record with the filter", name)
		case !slices.Contains(settable, f):
			return nil, wire.FieldError(wire.CodeBadField, name, "field %s cannot be set by %s on template %s", name, op, t.Name)
		}
		if val == nil {
			if f.Required || f.Key {
				return nil, wire.FieldError(wire.CodeBadValue, name, "field %s is required and cannot be null", name)
			}
			out = append(out, Assign{Field: f})
			continue
		}
		cv, err := convert(f, val)
		if err != nil {
			return nil, err
		}
		out = append(out, Assign{Field: f, Value: cv})
	}
	if op == wire.OpCreate {
		if err := missingRequired(t, out); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Assign) int { return a.Field.Index - b.Field.Index })
	return out, nil
}

// settableFields lists the fields op may set: the procedure's parameters on
// MariaDB (less the key for update), the writable fields and the key on
// MongoDB, where a create may choose its own key.
func settableFields(t *template.Template, op wire.Op) []*template.Field {
	if t.StoreKind == template.StoreMongo {
		var fs []*template.Field
		for _, f := range t.Fields {
			if f.Writable() || (f.Key && op == wire.OpCreate) {
				fs = append(fs, f)
			}
		}
		return fs
	}
	ps := t.Params(op)
	if op == wire.OpUpdate && len(ps) > 0 {
		return ps[1:]
	}
	return ps
}

func missingRequired(t *template.Template, data []Assign) error {
	for _, f := range t.Fields {
		if !f.Required || f.Key || f.Readonly {
			continue
		}
		if !slices.ContainsFunc(data, func(a Assign) bool { return a.Field == f }) {
			return wire.FieldError(wire.CodeBadValue, f.Name, "field %s is required by create", f.Name)
		}
	}
	return nil
}

func parseFilter(t *template.Template, raw json.RawMessage, lim Limits) (*Expr, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	v, err := decodeJSON(raw, "filter")
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, wire.FieldError(wire.CodeBadRequest, "filter", "filter must be an object of field names to conditions")
	}
	e, err := parseObject(t, obj, lim, 1)
	if err != nil {
		return nil, err
	}
	if e.Cond == nil && len(e.And) == 0 && len(e.Or) == 0 {
		return nil, nil
	}
	return e, nil
}

// parseObject reads {field: cond, ..., "and": [...], "or": [...]}: all
// entries must hold. Keys are visited in sorted order so the same filter
// always yields the same statement.
func parseObject(t *template.Template, obj map[string]any, lim Limits, depth int) (*Expr, error) {
	if depth > lim.MaxDepth {
		return nil, wire.FieldError(wire.CodeBadRequest, "filter", "filter nests deeper than %d levels", lim.MaxDepth)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var all []*Expr
	for _, k := range keys {
		switch k {
		case "and", "or":
			list, ok := obj[k].([]any)
			if !ok || len(list) == 0 {
				return nil, wire.FieldError(wire.CodeBadRequest, "filter", "%s must be a non-empty array of filter objects", k)
			}
			subs := make([]*Expr, 0, len(list))
			for _, item := range list {
				o, ok := item.(map[string]any)
				if !ok {
					return nil, wire.FieldError(wire.CodeBadRequest, "filter", "%s must hold filter objects", k)
				}
				sub, err := parseObject(t, o, lim, depth+1)
				if err != nil {
					return nil, err
				}
				subs = append(subs, sub)
			}
			if k == "and" {
				all = append(all, &Expr{And: subs})
			} else {
				all = append(all, &Expr{Or: subs})
			}
		default:
			f := t.Field(k)
			if f == nil {
				return nil, unknownField(t, k)
			}
			conds, err := parseConds(f, obj[k], lim)
			if err != nil {
				return nil, err
			}
			for _, c := range conds {
				all = append(all, &Expr{Cond: c})
			}
		}
	}
	if len(all) == 0 && depth > 1 {
		// An empty object inside and/or would be an empty condition, which
		// SQL cannot express and MongoDB reads as "match everything".
		return nil, wire.FieldError(wire.CodeBadRequest, "filter", "and/or hold an empty filter object")
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return &Expr{And: all}, nil
}

var operators = map[string]Operator{
	"eq": OpEq, "ne": OpNe, "gt": OpGt, "gte": OpGte, "lt": OpLt, "lte": OpLte,
	"in": OpIn, "nin": OpNin, "like": OpLike, "null": OpNull,
}

// parseConds reads a field's condition: a bare value (eq) or an object of
// operators, all of which must hold.
func parseConds(f *template.Field, v any, lim Limits) ([]*Cond, error) {
	ops, ok := v.(map[string]any)
	if !ok {
		c, err := parseCond(f, OpEq, v, lim)
		if err != nil {
			return nil, err
		}
		return []*Cond{c}, nil
	}
	if len(ops) == 0 {
		return nil, wire.FieldError(wire.CodeBadRequest, f.Name, "condition on %s is empty", f.Name)
	}
	names := make([]string, 0, len(ops))
	for k := range ops {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]*Cond, 0, len(ops))
	for _, name := range names {
		op, ok := operators[name]
		if !ok {
			return nil, wire.FieldError(wire.CodeBadRequest, f.Name, "unknown operator %q on %s (eq ne gt gte lt lte in nin like null)", name, f.Name)
		}
		c, err := parseCond(f, op, ops[name], lim)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCond(f *template.Field, op Operator, v any, lim Limits) (*Cond, error) {
	c := &Cond{Field: f, Op: op}
	if f.Type == template.TypeJSON && op != OpNull && !((op == OpEq || op == OpNe) && v == nil) {
		return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is json: filter it with null only", f.Name)
	}
	switch op {
	case OpNull:
		b, ok := v.(bool)
		if !ok {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "null on %s takes true or false", f.Name)
		}
		c.Value = b
	case OpIn, OpNin:
		list, ok := v.([]any)
		if !ok {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s takes an array", op, f.Name)
		}
		if len(list) == 0 {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s takes at least one value", op, f.Name)
		}
		if len(list) > lim.MaxInList {
			return nil, wire.FieldError(wire.CodeTooLarge, f.Name, "%s on %s has %d values: at most %d", op, f.Name, len(list), lim.MaxInList)
		}
		vals := make([]any, len(list))
		for i, item := range list {
			if item == nil {
				return nil, wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s cannot hold null: use null", op, f.Name)
			}
			cv, err := convert(f, item)
			if err != nil {
				return nil, err
			}
			vals[i] = cv
		}
		c.Value = vals
	case OpLike:
		s, ok := v.(string)
		if !ok || f.Type != template.TypeString {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "like takes a string pattern on a string field")
		}
		c.Value = s
	case OpEq, OpNe:
		if v == nil {
			return c, nil
		}
		fallthrough
	default:
		if v == nil {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "%s on %s cannot compare with null: use null", op, f.Name)
		}
		if f.Type == template.TypeBool && op != OpEq && op != OpNe {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is bool: use eq or ne", f.Name)
		}
		cv, err := convert(f, v)
		if err != nil {
			return nil, err
		}
		c.Value = cv
	}
	return c, nil
}

// convert checks a JSON value against a field's type and returns it as the
// Go type the adapters bind.
func convert(f *template.Field, v any) (any, error) {
	bad := func(want string) error {
		return wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes %s, not %s", f.Name, want, jsonKind(v))
	}
	switch f.Type {
	case template.TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, bad("a string")
		}
		if f.Max > 0 && utf8.RuneCountInString(s) > f.Max {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is longer than %d characters", f.Name, f.Max)
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s holds a NUL character", f.Name)
		}
		return s, nil
	case template.TypeInt:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad("an integer")
		}
		i, err := n.Int64()
		if err != nil {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes a 64-bit integer, not %s", f.Name, n)
		}
		return i, nil
	case template.TypeFloat:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad("a number")
		}
		x, err := n.Float64()
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes a finite number, not %s", f.Name, n)
		}
		return x, nil
	case template.TypeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, bad("true or false")
		}
		return b, nil
	case template.TypeDatetime:
		s, ok := v.(string)
		if !ok {
			return nil, bad("an RFC 3339 time string")
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
			if ts, err := time.Parse(layout, s); err == nil {
				return ts.UTC(), nil
			}
		}
		return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", f.Name, s)
	case template.TypeJSON:
		return plainJSON(v), nil
	}
	return nil, fmt.Errorf("field %s: unhandled type %s", f.Name, f.Type)
}

// plainJSON replaces json.Number with int64 or float64 throughout v, so
// every adapter can encode it natively.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainJSON(e)
		}
	}
	return v
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

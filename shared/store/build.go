package store

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

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
		if req.Offset > lim.MaxOffset {
			return nil, wire.FieldError(wire.CodeTooLarge, "offset", "offset %d: at most %d; page further with a filter on a sortable field (the last value seen) instead", req.Offset, lim.MaxOffset)
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
		q.MaxAffected = lim.MaxAffected
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
		if !s.Field.Sortable {
			return nil, wire.FieldError(wire.CodeBadField, name, "field %s is not sortable; the DBA marks sortable fields in the template (sortable: %s)", name, sortableList(t))
		}
		out = append(out, s)
	}
	return out, nil
}

// sortableList names the fields a read of t may sort on, for a message.
func sortableList(t *template.Template) string {
	var names []string
	for _, f := range t.Fields {
		if f.Sortable {
			names = append(names, f.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func parseData(t *template.Template, op wire.Op, raw json.RawMessage) ([]Assign, error) {
	if len(raw) == 0 || isNull(raw) {
		if op == wire.OpCreate {
			return nil, missingRequired(t, nil)
		}
		return nil, nil
	}
	d := openDoc(raw, "data")
	defer d.close()
	if ok, err := d.open('{'); !ok {
		if err == nil {
			err = wire.FieldError(wire.CodeBadRequest, "data", "data must be an object of field names to values")
		}
		return nil, err
	}
	settable := settableFields(t, op)
	var out []Assign
	for {
		name, err := d.token()
		if err != nil {
			return nil, err
		}
		if name.Kind() == '}' {
			break
		}
		f := t.Field(name.String())
		switch {
		case f == nil:
			return nil, unknownField(t, name.String())
		case f.Readonly:
			return nil, wire.FieldError(wire.CodeBadField, f.Name, "field %s is read-only", f.Name)
		case f.Key && op == wire.OpUpdate:
			return nil, wire.FieldError(wire.CodeBadField, f.Name, "field %s is the key and cannot be changed; select the record with the filter", f.Name)
		case !slices.Contains(settable, f):
			return nil, wire.FieldError(wire.CodeBadField, f.Name, "field %s cannot be set by %s on template %s", f.Name, op, t.Name)
		}
		if d.peek() == 'n' {
			if f.Required || f.Key {
				return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is required and cannot be null", f.Name)
			}
			if _, err := d.token(); err != nil {
				return nil, err
			}
			out = append(out, Assign{Field: f})
			continue
		}
		cv, err := convert(f, d)
		if err != nil {
			return nil, err
		}
		out = append(out, Assign{Field: f, Value: cv})
	}
	if err := d.end(); err != nil {
		return nil, err
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
		if !f.Required || f.Readonly { // a key is required only when it says so: most are generated
			continue
		}
		if !slices.ContainsFunc(data, func(a Assign) bool { return a.Field == f }) {
			return wire.FieldError(wire.CodeBadValue, f.Name, "field %s is required by create", f.Name)
		}
	}
	return nil
}

package crud

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Access rules (Config.Policy, package access) apply to every template
// operation a request fans out to: the request itself or each item of a
// batch, and each relation an include reads, which needs the child
// template's read permission. An owner restriction (access.Owner) is
// applied to the validated query, never to the request's text: a read,
// count, update or delete gets "and owner = the caller" added to its
// filter, an include's child query too; a create sets the owner field to
// the caller, and a create or update whose data names another owner is
// forbidden. User and session ops are tercero's: an appserver answers
// them bad_request naming their routing key.

// allow asks the policy whether the request's caller may run op on t
// (t nil for lineage), and under which owner restriction.
func (r *request) allow(t *template.Template, op wire.Op) (*access.Owner, error) {
	if r.h.cfg.Policy == nil {
		return nil, nil
	}
	return r.h.cfg.Policy.Allow(t, op, r.m.Caller)
}

// notHere is the error of a user or session op sent to an appserver.
func notHere(op wire.Op) error {
	return wire.FieldError(wire.CodeBadRequest, "op", "%s is a user or session op: tercero serves it, not an appserver; publish it with routing key %s (client.Do does)", op, op.RoutingKey())
}

// ownedData returns req with data naming owner's field when it is a
// create whose data leaves the field out, so that a required owner field
// is not refused as missing before restrict sets it; other requests come
// back as they are. Data that is not an object is left for store.Build to
// refuse.
func ownedData(req *wire.Request, owner *access.Owner) *wire.Request {
	if owner == nil || req.Op != wire.OpCreate {
		return req
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(req.Data, &fields); err != nil || fields == nil {
		return req
	}
	if _, ok := fields[owner.Field.Name]; ok {
		return req
	}
	data := fmt.Appendf(nil, "{%q:%d", owner.Field.Name, owner.User)
	if len(fields) > 0 {
		data = append(data, ',')
	}
	data = append(data, bytes.TrimSpace(req.Data)[1:]...)
	out := *req
	out.Data = data
	return &out
}

// restrict applies owner to the validated query q: a create or update
// may name no other owner, a create must name the owner (ownedData saw
// to it), and every other op gets the owner's condition added to its
// filter (an update too: it changes only the owner's records).
func restrict(q *store.Query, owner *access.Owner) error {
	if owner == nil {
		return nil
	}
	f := owner.Field
	for _, a := range q.Data {
		if a.Field == f && a.Value != owner.User {
			return wire.FieldError(wire.CodeForbidden, f.Name, "template %s: field %s holds the owner of a record; you may %s only records you own (%s %d)",
				q.Template.Name, f.Name, q.Op, f.Name, owner.User)
		}
	}
	if q.Op == wire.OpCreate {
		if !hasField(q.Data, f) {
			return fmt.Errorf("template %s: a create without its owner field %s got past ownedData", q.Template.Name, f.Name)
		}
		return nil
	}
	q.Filter = ownedFilter(q.Filter, owner)
	return nil
}

// ownedFilter returns filter and "owner field = owner's user".
func ownedFilter(filter *store.Expr, owner *access.Owner) *store.Expr {
	mine := &store.Expr{Cond: &store.Cond{Field: owner.Field, Op: store.OpEq, Value: owner.User}}
	if filter == nil {
		return mine
	}
	return &store.Expr{And: []*store.Expr{filter, mine}}
}

func hasField(data []store.Assign, f *template.Field) bool {
	for _, a := range data {
		if a.Field == f {
			return true
		}
	}
	return false
}

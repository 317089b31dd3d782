package template

import (
	"fmt"
	"slices"
	"strings"

	"github.com/beds-project/beds/shared/wire"
)

// A REC template may say who may run its ops, in an [access] table:
//
//	[access]
//	read   = ["member"]   # the roles allowed to read
//	create = ["member"]
//	delete = ["admin"]
//	owner  = "user"       # optional: the int field holding a row's owner
//
// Two names are not roles: AnyCaller ("*") allows any caller known by a
// session or as a trusted service, Anyone ("anyone") allows even a caller
// without either. An op the table does not name is allowed to admins
// only. What the roles mean, and how owner limits a caller to their own
// rows, is package access's to enforce; this file only reads and checks
// the table.

// The names an [access] list may hold besides roles.
const (
	// AnyCaller allows every known caller: a user with a session or a
	// trusted service, whatever its roles.
	AnyCaller = "*"
	// Anyone allows every caller, even one without a session who is not a
	// trusted service.
	Anyone = "anyone"
)

// Access is a template's [access] table.
type Access struct {
	// Roles maps each op the table names to the roles allowed to run it
	// (with AnyCaller and Anyone); an op missing here is for admins only.
	// Immutable after Load.
	Roles map[wire.Op][]string
	// Owner, when set, is the int field holding the user ID of a record's
	// owner: a user who is not an admin reads, counts, updates and deletes
	// only records whose owner is them, and a create by them sets it.
	Owner *Field
}

// accessOps are the ops an [access] table may name: a template's own.
var accessOps = []wire.Op{wire.OpCreate, wire.OpRead, wire.OpUpdate, wire.OpDelete, wire.OpCount}

// access reads the optional [access] table of a REC template, keys in the
// order they are written so a file with two problems always reports the
// same one.
func (p *parser) access(t *Template) error {
	if !p.md.IsDefined("access") {
		return nil
	}
	a := &Access{Roles: map[wire.Op][]string{}}
	for _, k := range p.md.Keys() {
		if len(k) != 2 || k[0] != "access" {
			continue
		}
		key := k[1]
		at := "access." + key
		v := p.ff.Access[key]
		if key == "owner" {
			if err := p.owner(t, a, v); err != nil {
				return err
			}
			continue
		}
		op := wire.Op(key)
		if !slices.Contains(accessOps, op) {
			return p.fail(at, "access.%s: not an op of a template; [access] names create, read, update, delete, count and owner", key)
		}
		if !t.allow[op] {
			return p.fail(at, "access.%s: ops.allow does not allow %s; allow it there or drop this line", key, key)
		}
		list, ok := v.([]any)
		if !ok {
			return p.fail(at, "access.%s must be a list of role names (\"*\" any known caller, \"anyone\" even without a session)", key)
		}
		roles := make([]string, 0, len(list))
		for _, r := range list {
			s, ok := r.(string)
			if !ok || strings.TrimSpace(s) == "" || strings.TrimSpace(s) != s {
				return p.fail(at, "access.%s: %v is not a role name; a role is a non-empty string without surrounding spaces", key, quoted(r))
			}
			if !slices.Contains(roles, s) {
				roles = append(roles, s)
			}
		}
		a.Roles[op] = roles
	}
	t.Access = a
	p.openOwned(t)
	return nil
}

// openOwned warns of an owned template that opens an op limited by owner
// to "anyone": a caller without a session is nobody's, so the owner does
// not limit them, and they reach every record. Fine for public records;
// the warning makes sure it is meant.
func (p *parser) openOwned(t *Template) {
	if t.Access.Owner == nil {
		return
	}
	for _, op := range []wire.Op{wire.OpRead, wire.OpCount, wire.OpUpdate, wire.OpDelete} {
		if slices.Contains(t.Access.Roles[op], Anyone) {
			t.warnings = append(t.warnings, &Error{File: p.file, Line: lineOf(p.lines, "access."+string(op)),
				Reason: fmt.Sprintf("access.%s allows anyone on a template with an owner: a caller without a session is limited to no owner's records and reaches every one; fine for public records", op)})
		}
	}
}

// owner checks access.owner: an int field that is not the key, which a
// create can set when the template allows create.
func (p *parser) owner(t *Template, a *Access, v any) error {
	name, ok := v.(string)
	if !ok {
		return p.fail("access.owner", "access.owner must name a field (a string)")
	}
	f := t.byName[name]
	switch {
	case f == nil:
		return p.fail("access.owner", "access.owner: field %q is not declared", name)
	case f.Type != TypeInt:
		return p.fail("access.owner", "access.owner: field %s is %s; the owner field holds a user ID, an int", name, f.Type)
	case f.Key:
		return p.fail("access.owner", "access.owner: field %s is the key; name the int field that holds the owner's user ID", name)
	case t.allow[wire.OpCreate] && !slices.Contains(settableOnCreate(t), f):
		return p.fail("access.owner", "access.owner: create cannot set field %s (read-only, or not a parameter of create), so a create could not record its owner", name)
	}
	a.Owner = f
	return nil
}

// settableOnCreate lists the fields a create may set: the create
// procedure's parameters on MariaDB, the writable fields on MongoDB.
func settableOnCreate(t *Template) []*Field {
	if t.StoreKind == StoreMariaDB {
		return t.params[wire.OpCreate]
	}
	var fs []*Field
	for _, f := range t.Fields {
		if f.Writable() {
			fs = append(fs, f)
		}
	}
	return fs
}

// quoted writes a TOML value for a message.
func quoted(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}

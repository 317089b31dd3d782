package template

import (
	"fmt"
	"slices"

	"github.com/beds-project/beds/shared/wire"
)

// The template lint: rules beyond the file format that keep a template and
// the database objects serving it in agreement. Errors stop the load like
// any validation error, with the file and the line; warnings are kept on
// the template (Template.Warnings, Registry.Warnings) for bedsctl
// templates to print and a node to log, and never stop anything.
//
// Errors:
//   - a key callers name on create (a parameter of create: the database
//     makes none) is required, so that a create without it is answered
//     bad_value naming the field, not by the database naming a column;
//   - each TLA belongs to one REC template of the folder (Load), because
//     stored names and object names carry it.
//
// Warnings:
//   - a MariaDB object name that does not follow the convention vw_<tla>
//     and sp_<tla>_<op>. [objects] always names the objects explicitly, so
//     another name is allowed (the objects of another domain, a view the
//     DBA renamed); the warning makes sure it is meant.
//
// That sortable and joined fields are indexed is the database's side:
// bedsctl schema check and a node's schema step report a missing index.

// lint runs the checks one file can pass alone on a REC template, and
// records its warnings.
func (p *parser) lint(t *Template) error {
	if k := t.Key; t.allow[wire.OpCreate] && slices.Contains(t.params[wire.OpCreate], k) && !k.Required {
		return p.fail("fields."+k.Name, "field %s: the key is a parameter of create, so callers name each record and the database makes none; mark it required = true, so that a create without it is refused naming the field", k.Name)
	}
	if t.StoreKind != StoreMariaDB {
		return nil
	}
	o := t.Objects
	for _, c := range [...]struct{ key, name, want string }{
		{"read", o.Read, "vw_" + t.TLA},
		{"create", o.Create, "sp_" + t.TLA + "_create"},
		{"update", o.Update, "sp_" + t.TLA + "_update"},
		{"delete", o.Delete, "sp_" + t.TLA + "_delete"},
	} {
		if c.name != "" && c.name != c.want {
			t.warnings = append(t.warnings, &Error{File: p.file, Line: lineOf(p.lines, "objects."+c.key),
				Reason: fmt.Sprintf("objects.%s %q does not follow the convention %s; fine when meant (another domain's objects, a name the DBA chose), and bedsctl schema gen writes the name the template gives", c.key, c.name, c.want)})
		}
	}
	return nil
}

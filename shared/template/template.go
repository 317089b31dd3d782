// Package template parses, validates and holds the template files that
// describe BEDS data domains.
//
// A template names a domain (users), its three-letter acronym (usr), the
// store that holds it, its fields with their types, the DBA-owned objects
// that serve it and the operations callers may run. Callers use plain field
// names (email); stores use stored names, by default the TLA followed by an
// underscore and the plain name (usr_email).
//
// Those are REC templates (kind = "rec"). A REL template (kind = "rel")
// relates two of them: which field of a parent row matches which field of
// the child rows, the name (as) the child rows appear under in a parent
// row, and whether there are many of them or one. A node loads both kinds
// from one folder, REC templates first, then each relation against them;
// the registry serves REC templates by name and relations by parent and
// name (Registry.Relation).
//
// A REC template may also say who may run its ops, and name the field that
// holds a record's owner, in an [access] table (access.go); package access
// enforces it.
//
// Everything a store adapter puts into a statement or a query document as a
// name comes from a validated template: names are checked against a strict
// pattern here, so no request text can ever become an identifier.
package template

import (
	"fmt"
	"regexp"

	"github.com/beds-project/beds/shared/wire"
)

// Kind is a template's kind.
type Kind string

// The template kinds: a REC template is a data domain; a REL template
// relates two REC templates, so that a read of the one can include rows of
// the other (see Relation).
const (
	KindRec Kind = "rec"
	KindRel Kind = "rel"
)

// Type is a field's value type.
type Type string

// The field types.
const (
	TypeString   Type = "string"
	TypeInt      Type = "int"
	TypeFloat    Type = "float"
	TypeBool     Type = "bool"
	TypeDatetime Type = "datetime"
	TypeJSON     Type = "json"
)

// Valid reports whether t is a known field type.
func (t Type) Valid() bool {
	switch t {
	case TypeString, TypeInt, TypeFloat, TypeBool, TypeDatetime, TypeJSON:
		return true
	}
	return false
}

// Store kinds a template's store can have.
const (
	StoreMariaDB = "mariadb"
	StoreMongo   = "mongo"
)

// Field is one field of a template.
type Field struct {
	Name     string // plain name used by callers
	Stored   string // name in the store (column or document key)
	Type     Type
	Key      bool // the record's key; exactly one per template
	Required bool // create must set it
	Readonly bool // set by the store, never by a caller
	Max      int  // maximum length in characters of a string, 0 for none
	Index    int  // position in declaration order
	// Sortable says callers may sort reads on the field: the DBA's
	// decision, written in the template (sortable = true), so that no
	// caller can order a read by a field no index serves. The key is
	// sortable unless the template says sortable = false; a json field
	// never is.
	Sortable bool
	// Unique says no two records may hold one value (unique = true): the
	// store enforces it with a unique index, and a write that breaks it is
	// answered conflict. The key is unique without saying so; a json field
	// cannot be.
	Unique bool
	// Joined says a REL template matches child rows on the field
	// (on.child), so its store indexes it. Load sets it; Parse, which sees
	// one file, cannot.
	Joined bool
}

// Writable reports whether a caller may set the field.
func (f *Field) Writable() bool { return !f.Key && !f.Readonly }

// Objects names the DBA-owned objects that serve a template.
type Objects struct {
	Read       string // MariaDB view for read and count
	Create     string // MariaDB procedure
	Update     string // MariaDB procedure
	Delete     string // MariaDB procedure
	Collection string // MongoDB collection
}

// Template is one validated data domain, a REC template. It is immutable
// after Load.
type Template struct {
	Name      string
	TLA       string
	Kind      Kind
	Store     string // store name from config
	StoreKind string // StoreMariaDB or StoreMongo
	File      string // file it was loaded from
	Fields    []*Field
	Key       *Field
	Objects   Objects
	// Access is the template's [access] table: which roles may run which
	// ops, and the owner field; nil when the file has none, and then the
	// config's [access] unlisted decides (package access).
	Access *Access

	byName   map[string]*Field
	names    []string // plain field names in declaration order
	allow    map[wire.Op]bool
	params   map[wire.Op][]*Field
	warnings []*Error
}

// Names returns the plain field names in declaration order. The slice is
// shared: do not modify it.
func (t *Template) Names() []string { return t.names }

// Field returns the field with the plain name name, or nil.
func (t *Template) Field(name string) *Field { return t.byName[name] }

// Allows reports whether callers may run op on the template.
func (t *Template) Allows(op wire.Op) bool { return t.allow[op] }

// AllowedOps returns the allowed operations in canonical order.
func (t *Template) AllowedOps() []wire.Op {
	var ops []wire.Op
	for _, op := range wire.DataOps {
		if t.allow[op] {
			ops = append(ops, op)
		}
	}
	return ops
}

// Params returns the parameter list of a MariaDB write procedure: by
// default create takes the writable fields, update the key then the
// writable fields, delete the key; a template may override each list.
func (t *Template) Params(op wire.Op) []*Field { return t.params[op] }

// Warnings returns what the template lint found worth a look but not
// wrong (see lint.go), located like errors. The slice is shared: do not
// modify it.
func (t *Template) Warnings() []*Error { return t.warnings }

var (
	nameRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	tlaRE   = regexp.MustCompile(`^[a-z]{3}$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	// MongoDB collection names: no $, no NUL, not system.*; we also keep
	// them to a portable character set.
	collRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,119}$`)
)

// Error is a validation failure, located in its file.
type Error struct {
	File   string
	Line   int // 0 when the problem has no single line
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// defaultParams builds the parameter lists Params returns where a template
// has no [params] entry for the operation.
func defaultParams(t *Template) map[wire.Op][]*Field {
	var writable []*Field
	for _, f := range t.Fields {
		if f.Writable() {
			writable = append(writable, f)
		}
	}
	return map[wire.Op][]*Field{
		wire.OpCreate: writable,
		wire.OpUpdate: append([]*Field{t.Key}, writable...),
		wire.OpDelete: {t.Key},
	}
}

// Package schema is the store-agnostic part of keeping a database and the
// templates it serves in agreement: what a disagreement is (Difference),
// what a store that can find them implements (Checker), what a node does
// when it finds them at start-up (Mode, config templates.check), and what
// every generator shares (the fields to index, the header of a generated
// file).
//
// It does no I/O and imports no driver. Each store adapter owns its own
// dialect: the adapter package generates its objects from a template
// (mariadb.GenerateSchema, mongo.GenerateSchema) and compares a live
// database with the templates (its Store implements Checker). bedsctl schema gen and check,
// and the IPL's schema step, reach them through this package's types only,
// so a store kind plugs in by implementing them.
//
// The rules every kind follows:
//
//   - A generated file is a starting point the DBA owns: it is reviewed,
//     edited where the DBA needs (a default, a check, a wider type), checked
//     into deploy/<kind>/ and applied by hand, never behind anyone's back.
//   - The check compares what BEDS relies on, not the text of the objects:
//     the objects exist, they have the columns (fields) and parameters the
//     template's calling convention needs, with types that can hold the
//     template's values, and the fields callers sort on or relations join
//     on are indexed. Hand edits that keep those hold pass it.
//   - Differences are reported one per disagreement, in a stable order, each
//     naming the template, the object, what was expected and what was found.
package schema

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/beds-project/beds/shared/template"
)

// Difference is one way a live database disagrees with a template.
type Difference struct {
	Template string // the template's name
	// Object names the database object with its kind: "view vw_usr",
	// "procedure sp_usr_create", "table tbl_usr", "collection profiles".
	Object string
	// Expected is what the template needs, Found what the database has;
	// Found is "none" when the object or the part of it is missing.
	Expected string
	Found    string
}

// String reads "template users: view vw_usr: expected column usr_email
// (string), found none".
func (d Difference) String() string {
	return fmt.Sprintf("template %s: %s: expected %s, found %s", d.Template, d.Object, d.Expected, d.Found)
}

// Checker is a store that can compare its live database with the templates
// it serves.
//
// CheckSchema returns every difference it finds between the database and
// ts, which are templates of this store's kind, sorted (Sort). An error is
// a failure to look (the server is unreachable, a privilege is missing),
// never a difference.
type Checker interface {
	CheckSchema(ctx context.Context, ts []*template.Template) ([]Difference, error)
}

// Mode is config templates.check: what a node does at start-up when a
// store's database disagrees with its templates.
type Mode string

// The modes.
const (
	// Strict refuses to start, naming every difference. The default.
	Strict Mode = "strict"
	// Warn logs every difference and starts: for a migration window, while
	// the DBA applies the objects a template change needs.
	Warn Mode = "warn"
)

// ParseMode reads a templates.check value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Strict, Warn:
		return m, nil
	}
	return "", fmt.Errorf("%q: strict (refuse to start when a database disagrees with its templates) or warn (log and start)", s)
}

// Sort orders differences by template, then object, then expectation, so
// that a report is the same from run to run.
func Sort(ds []Difference) {
	slices.SortStableFunc(ds, func(a, b Difference) int {
		return cmp.Or(cmp.Compare(a.Template, b.Template), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Expected, b.Expected))
	})
}

// MismatchError is a store's database disagreeing with its templates, as
// the IPL refuses to start on in Strict mode.
type MismatchError struct {
	Store string // the store's name from the config
	Diffs []Difference
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store %s disagrees with its templates in %d place", e.Store, len(e.Diffs))
	if len(e.Diffs) != 1 {
		b.WriteByte('s')
	}
	b.WriteString(" (apply the objects bedsctl schema gen writes, or set templates.check = \"warn\" for a migration window):")
	for _, d := range e.Diffs {
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

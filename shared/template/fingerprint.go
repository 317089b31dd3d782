package template

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Fingerprint returns a stable hash of the template's validated
// definition: 16 lowercase hex digits. Two files that differ only in
// comments, whitespace, key order within a line, the description or
// spelled-out defaults have one fingerprint; any change to what the
// database objects depend on (the name, the TLA, the store kind, a field,
// its stored name, type or attributes, the objects, the parameter lists,
// the allowed operations, the fields relations join on) changes it. The
// store's config name is not part of it: moving a domain to another
// MariaDB store needs the same objects there. Nor is the [access] table:
// who may run an op is enforced by the nodes, and changes no object.
//
// A generated file carries the fingerprint of the template it came from,
// so a template changed since shows.
func (t *Template) Fingerprint() string {
	sum := sha256.Sum256([]byte(t.canonical()))
	return hex.EncodeToString(sum[:8])
}

// canonical is the text Fingerprint hashes: one line per fact, in a fixed
// order. Changing it changes every fingerprint, so only extend it with
// lines for new facts.
func (t *Template) canonical() string {
	var b strings.Builder
	fmt.Fprintf(&b, "beds template 1\nname %s\ntla %s\nkind %s\nstore %s\n", t.Name, t.TLA, t.Kind, t.StoreKind)
	for _, f := range t.Fields {
		fmt.Fprintf(&b, "field %s stored=%s type=%s key=%t required=%t readonly=%t max=%d sortable=%t unique=%t joined=%t\n",
			f.Name, f.Stored, f.Type, f.Key, f.Required, f.Readonly, f.Max, f.Sortable, f.Unique, f.Joined)
	}
	o := t.Objects
	fmt.Fprintf(&b, "objects read=%s create=%s update=%s delete=%s collection=%s\n", o.Read, o.Create, o.Update, o.Delete, o.Collection)
	for _, op := range t.AllowedOps() {
		fmt.Fprintf(&b, "allow %s\n", op)
		if ps := t.params[op]; op.Writes() && t.StoreKind == StoreMariaDB {
			b.WriteString("params " + string(op))
			for _, f := range ps {
				b.WriteString(" " + f.Name)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

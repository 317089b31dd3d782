package access

import (
	"fmt"
	"slices"
	"strings"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Policy decides whether a caller may run an op on a template, and which
// of its records the op may touch. It holds no state beyond the config
// and is safe for concurrent use.
type Policy struct {
	unlisted string
	// unlistedRoles is what a template without [access] allows every op
	// to: nobody but admins, any known caller, or anyone.
	unlistedRoles []string
}

// NewPolicy returns the policy of config [access] unlisted: what a
// template without an [access] table allows (config.UnlistedDeny,
// UnlistedAuthenticated or UnlistedOpen).
func NewPolicy(unlisted string) (*Policy, error) {
	p := &Policy{unlisted: unlisted}
	switch unlisted {
	case config.UnlistedDeny:
	case config.UnlistedAuthenticated:
		p.unlistedRoles = []string{template.AnyCaller}
	case config.UnlistedOpen:
		p.unlistedRoles = []string{template.Anyone}
	default:
		return nil, fmt.Errorf("access.unlisted %q: must be %s, %s or %s", unlisted,
			config.UnlistedDeny, config.UnlistedAuthenticated, config.UnlistedOpen)
	}
	return p, nil
}

// Owner is the restriction an allowed op runs under when the template has
// an owner field and the caller is a user who is not an admin: it touches
// only records whose Field holds User, and a create sets Field to User.
type Owner struct {
	Field *template.Field
	User  int64
}

// Allow reports whether caller (nil: nobody known) may run op on t, and
// the owner restriction the op then runs under (nil for none). It fails
// with a *wire.Error: unauthenticated when nobody is known and the op
// needs someone, forbidden when the caller's roles do not allow it. Ping
// is allowed to anyone; op lineage, which reads what any template's
// requests did, needs the admin role unless unlisted is open (t is not
// read for either).
func (p *Policy) Allow(t *template.Template, op wire.Op, caller *wire.Identity) (*Owner, error) {
	switch op {
	case wire.OpPing:
		return nil, nil
	case wire.OpLineage:
		return nil, p.check("", op, caller, p.lineageRoles())
	}
	if caller != nil && caller.Has(wire.RoleAdmin) {
		return nil, nil
	}
	roles := p.unlistedRoles
	if t.Access != nil {
		roles = t.Access.Roles[op]
	}
	if err := p.check(t.Name, op, caller, roles); err != nil {
		return nil, err
	}
	if t.Access == nil || t.Access.Owner == nil || caller == nil || caller.Service || caller.User == 0 {
		return nil, nil
	}
	return &Owner{Field: t.Access.Owner, User: caller.User}, nil
}

// lineageRoles is who may read lineage besides admins.
func (p *Policy) lineageRoles() []string {
	if p.unlisted == config.UnlistedOpen {
		return []string{template.Anyone}
	}
	return nil
}

// check fails unless caller holds one of roles (with template.AnyCaller
// and template.Anyone) or the admin role. tmpl names the template for
// messages, "" for none.
func (p *Policy) check(tmpl string, op wire.Op, caller *wire.Identity, roles []string) error {
	if slices.Contains(roles, template.Anyone) || (caller != nil && caller.Has(wire.RoleAdmin)) {
		return nil
	}
	what := string(op)
	if tmpl != "" {
		what = fmt.Sprintf("%s on template %s", op, tmpl)
	}
	need := needed(roles)
	if caller == nil {
		return wire.Errorf(wire.CodeUnauthenticated, "%s needs a caller with %s: send a session token in header %s (login), or publish as a trusted service",
			what, need, wire.HeaderSession)
	}
	if slices.Contains(roles, template.AnyCaller) || slices.ContainsFunc(caller.Roles, func(r string) bool { return slices.Contains(roles, r) }) {
		return nil
	}
	return wire.Errorf(wire.CodeForbidden, "%s needs %s; %s has %s", what, need, callerName(caller), roleList(caller.Roles))
}

// needed says which roles would allow an op, for a message.
func needed(roles []string) string {
	if slices.Contains(roles, template.AnyCaller) {
		return "a session or a trusted service"
	}
	names := []string{wire.RoleAdmin}
	for _, r := range roles {
		if r != wire.RoleAdmin {
			names = append(names, r)
		}
	}
	if len(names) == 1 {
		return "role " + names[0]
	}
	return "one of the roles " + strings.Join(names, ", ")
}

// callerName names a caller for a message: their login or service name,
// never their token.
func callerName(id *wire.Identity) string {
	if id.Service {
		return fmt.Sprintf("service %q", id.Name)
	}
	return fmt.Sprintf("user %q", id.Name)
}

func roleList(roles []string) string {
	if len(roles) == 0 {
		return "no role"
	}
	return "roles " + strings.Join(roles, ", ")
}

package account

import (
	"context"
	"errors"

	"github.com/beds-project/beds/services/tercero/password"
	"github.com/beds-project/beds/shared/wire"
)

// publicFields are the accounts fields a user reply holds: never the hash.
var publicFields = []string{"id", "name", "roles", "disabled", "created", "changed"}

// hashed returns the hash of a new password, checked against min_password.
func (r *request) hashed(ctx context.Context, pw, field string) (string, error) {
	if err := checkPassword(pw, r.h.cfg.Tercero.MinPassword, field); err != nil {
		return "", err
	}
	enc, err := r.h.hasher.Hash(ctx, pw)
	if errors.Is(err, password.ErrTooLong) {
		return "", wire.FieldError(wire.CodeTooLarge, field, "a password is longer than %d bytes", password.MaxPassword)
	}
	return enc, err
}

// target returns the account the request acts on: data user, or the
// caller's own user when it names none. A caller who is not an admin may
// only name itself.
func (r *request) target(ctx context.Context, fields ...string) (wire.Row, error) {
	if err := r.needCaller(); err != nil {
		return nil, err
	}
	name := r.d.User
	if name == "" {
		if r.caller.User == 0 {
			return nil, wire.FieldError(wire.CodeBadRequest, "data.user", "%s by a service needs data user: the user to act on", r.m.Request.Op)
		}
		name = r.caller.Name
	}
	if !r.admin() && (r.caller.User == 0 || name != r.caller.Name) {
		return nil, wire.Errorf(wire.CodeForbidden, "%s on another user needs the %s role", r.m.Request.Op, wire.RoleAdmin)
	}
	a, err := r.h.accounts.one(ctx, filter{"name": name}, fields...)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, wire.FieldError(wire.CodeNotFound, "data.user", "no user %q", name)
	}
	return a, nil
}

// register adds a user: data user, password and roles; admin only.
func (r *request) register(ctx context.Context) (*wire.Reply, error) {
	if err := r.needAdmin(); err != nil {
		return nil, err
	}
	d := r.d
	switch {
	case d.User == "":
		return nil, wire.FieldError(wire.CodeBadRequest, "data.user", "register needs data user, password and roles")
	case d.Roles == nil:
		return nil, wire.FieldError(wire.CodeBadRequest, "data.roles", "register needs data roles: a list of role names")
	case d.NewPassword != "" || d.Session != "" || d.Client != "":
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "register takes data user, password and roles only")
	}
	enc, err := r.hashed(ctx, d.Password, "data.password")
	if err != nil {
		return nil, err
	}
	res, err := r.h.accounts.create(ctx, r.event(), filter{"name": d.User, "hash": enc, "roles": d.Roles, "disabled": false, "changed": stamp(r.h.now())})
	if isCode(err, wire.CodeConflict) {
		return nil, wire.FieldError(wire.CodeConflict, "data.user", "user %q exists already", d.User)
	}
	if err != nil {
		return nil, err
	}
	r.m.Log().Info("user registered", "user", d.User, "id", res.Key, "roles", d.Roles, "by", r.caller.Name)
	return &wire.Reply{Affected: 1, Key: res.Key}, nil
}

// passwd changes a password: the caller's own, with the current one, or
// any user's for an admin. It revokes the user's other sessions.
func (r *request) passwd(ctx context.Context) (*wire.Reply, error) {
	a, err := r.target(ctx, "id", "name", "hash")
	if err != nil {
		return nil, err
	}
	if r.d.NewPassword == "" {
		return nil, wire.FieldError(wire.CodeBadRequest, "data.new_password", "passwd needs data new_password")
	}
	if !r.admin() {
		ok, _, err := r.h.hasher.Verify(ctx, r.d.Password, rowString(a, "hash"))
		if err != nil && !errors.Is(err, password.ErrMalformed) {
			return nil, err
		}
		if !ok {
			r.m.Log().Info("password change refused: the current password is wrong", "user", rowString(a, "name"))
			return nil, wire.FieldError(wire.CodeUnauthenticated, "data.password", "the current password is wrong")
		}
	}
	enc, err := r.hashed(ctx, r.d.NewPassword, "data.new_password")
	if err != nil {
		return nil, err
	}
	id := rowInt(a, "id")
	if _, err := r.h.accounts.update(ctx, r.event(), filter{"id": id}, filter{"hash": enc, "changed": stamp(r.h.now())}); err != nil {
		return nil, err
	}
	others := filter{"user": id}
	if r.caller.Session != "" {
		others["id"] = filter{"ne": r.caller.Session}
	}
	n, err := r.h.sessions.deleteAll(ctx, others, r.h.cfg.Tercero.PurgeBatch, r.event)
	if err != nil {
		return nil, err
	}
	r.m.Log().Info("password changed", "user", rowString(a, "name"), "by", r.caller.Name, "sessions_revoked", n)
	return &wire.Reply{Affected: 1}, nil
}

// roles replaces a user's roles; admin only.
func (r *request) roles(ctx context.Context) (*wire.Reply, error) {
	if err := r.needAdmin(); err != nil {
		return nil, err
	}
	if r.d.User == "" || r.d.Roles == nil {
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "roles needs data user and roles")
	}
	res, err := r.h.accounts.update(ctx, r.event(), filter{"name": r.d.User}, filter{"roles": r.d.Roles, "changed": stamp(r.h.now())})
	if isCode(err, wire.CodeNotFound) {
		return nil, wire.FieldError(wire.CodeNotFound, "data.user", "no user %q", r.d.User)
	}
	if err != nil {
		return nil, err
	}
	r.m.Log().Info("roles changed", "user", r.d.User, "roles", r.d.Roles, "by", r.caller.Name)
	return &wire.Reply{Affected: res.Affected}, nil
}

// disable stops a user logging in and revokes their sessions (off true),
// or lets them log in again (off false); admin only.
func (r *request) disable(ctx context.Context, off bool) (*wire.Reply, error) {
	if err := r.needAdmin(); err != nil {
		return nil, err
	}
	if r.d.User == "" {
		return nil, wire.FieldError(wire.CodeBadRequest, "data.user", "%s needs data user", r.m.Request.Op)
	}
	a, err := r.h.accounts.one(ctx, filter{"name": r.d.User}, "id")
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, wire.FieldError(wire.CodeNotFound, "data.user", "no user %q", r.d.User)
	}
	id := rowInt(a, "id")
	if _, err := r.h.accounts.update(ctx, r.event(), filter{"id": id}, filter{"disabled": off, "changed": stamp(r.h.now())}); err != nil {
		return nil, err
	}
	var n int64
	if off {
		if n, err = r.h.sessions.deleteAll(ctx, filter{"user": id}, r.h.cfg.Tercero.PurgeBatch, r.event); err != nil {
			return nil, err
		}
	}
	r.m.Log().Info("user "+string(r.m.Request.Op)+"d", "user", r.d.User, "by", r.caller.Name, "sessions_revoked", n)
	return &wire.Reply{Affected: 1}, nil
}

// user reads one user without any password material: the caller's own,
// or any for an admin.
func (r *request) user(ctx context.Context) (*wire.Reply, error) {
	a, err := r.target(ctx, publicFields...)
	if err != nil {
		return nil, err
	}
	a["roles"] = rowRoles(a, "roles")
	return &wire.Reply{Rows: []wire.Row{a}, Count: 1, Columns: publicFields}, nil
}

package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/beds-project/beds/shared/wire"
)

// The methods of this file send tercero's user and session ops
// (wire.UserOps, wire.SessionOps): each is one request published as
// "usr.<op>" or "ses.<op>" whose data is a wire.UserData, and, like Do,
// each returns the reply's *wire.Error when it is not ok (unauthenticated,
// forbidden, rate_limited, not_found, ...), or a *wire.Error with code
// timeout or unavailable when no answer came. What they can tell before
// sending (an empty user name or password) fails with bad_request and
// sends nothing. Passwords go only into the request's body: no error and
// no log line of the client holds one.
//
// Each call acts as the client's session (Options.Session, SetSession)
// unless it gives WithSession; with neither it acts as the client's
// RabbitMQ user, which tercero trusts when [access.trusted] names it.

// Login checks user's password at tercero and opens a session. The
// returned identity holds the session token (Identity.Token, 256 random
// bits, answered this once) and the session's absolute expiry
// (Identity.Expires); keep the token secret. Login does not start using
// the session: pass the token to SetSession (every call of this client
// then acts as user) or to WithSession (one call does).
//
// Login never sends the client's own session, since an expired one would
// make tercero refuse the login. A wrong password and an unknown user are
// answered alike (unauthenticated); too many failed logins for the account
// or from this caller are answered rate_limited.
func (c *Client) Login(ctx context.Context, user, password string, opts ...CallOption) (*wire.Identity, error) {
	if err := needUser(user); err != nil {
		return nil, err
	}
	if err := needPassword("password", password); err != nil {
		return nil, err
	}
	reply, _, err := c.tercero(ctx, wire.OpLogin, &wire.UserData{User: user, Password: password}, false, opts)
	if err != nil {
		return nil, err
	}
	if reply.Identity == nil || reply.Identity.Token == "" {
		return nil, wire.Errorf(wire.CodeInternal, "tercero answered login (event %s) ok but without a session token", reply.Event)
	}
	return reply.Identity, nil
}

// Logout ends a session. With session "" it ends the caller's own (the
// one the call is sent with); otherwise session names one by its ID
// (Identity.Session, or the id of a row of Sessions, never a token): one
// of the caller's own, or anyone's for an admin. When Logout ended the
// client's own session, or tercero answered that it had already ended
// (unauthenticated), the client stops sending it (as SetSession("")).
func (c *Client) Logout(ctx context.Context, session string, opts ...CallOption) error {
	var data *wire.UserData
	if session != "" {
		data = &wire.UserData{Session: session}
	}
	_, sent, err := c.tercero(ctx, wire.OpLogout, data, true, opts)
	if session == "" && sent != nil && (err == nil || errCode(err) == wire.CodeUnauthenticated) {
		c.token.CompareAndSwap(sent, nil)
	}
	return err
}

// Refresh restarts the idle timeout of the caller's session; its absolute
// expiry stays. A session that ended is answered unauthenticated: log in
// again.
func (c *Client) Refresh(ctx context.Context, opts ...CallOption) error {
	_, _, err := c.tercero(ctx, wire.OpRefresh, nil, true, opts)
	return err
}

// Whoami returns who tercero takes the caller for: the user of the
// session the call is sent with (unauthenticated when it ended), or,
// without a session, the service its RabbitMQ user is trusted as. The
// identity holds no token.
func (c *Client) Whoami(ctx context.Context, opts ...CallOption) (*wire.Identity, error) {
	reply, _, err := c.tercero(ctx, wire.OpWhoami, nil, true, opts)
	if err != nil {
		return nil, err
	}
	if reply.Identity == nil {
		return nil, wire.Errorf(wire.CodeInternal, "tercero answered whoami (event %s) ok but without an identity", reply.Event)
	}
	return reply.Identity, nil
}

// Sessions lists the open sessions of user ("" for the caller's own; any
// other user's needs the admin role). Each row holds the session's id (not
// its token), created, seen and expires.
func (c *Client) Sessions(ctx context.Context, user string, opts ...CallOption) ([]wire.Row, error) {
	reply, _, err := c.tercero(ctx, wire.OpSessions, userData(user), true, opts)
	if err != nil {
		return nil, err
	}
	return reply.Rows, nil
}

// Revoke ends every session of user ("" for the caller's own; any other
// user's needs the admin role) and returns how many tercero ended. With
// user "" the client's own session is among them, and the client stops
// sending it.
func (c *Client) Revoke(ctx context.Context, user string, opts ...CallOption) (int64, error) {
	reply, sent, err := c.tercero(ctx, wire.OpRevoke, userData(user), true, opts)
	if err != nil {
		return 0, err
	}
	if user == "" && sent != nil {
		c.token.CompareAndSwap(sent, nil)
	}
	return reply.Affected, nil
}

// Register adds user with password and roles (none: a user who may log in
// but holds no role). It needs the admin role; a user of that name
// already registered is answered conflict.
func (c *Client) Register(ctx context.Context, user, password string, roles []string, opts ...CallOption) error {
	if err := needUser(user); err != nil {
		return err
	}
	if err := needPassword("password", password); err != nil {
		return err
	}
	if err := checkRoles(roles, false); err != nil {
		return err
	}
	_, _, err := c.tercero(ctx, wire.OpRegister, &wire.UserData{User: user, Password: password, Roles: roles}, true, opts)
	return err
}

// Passwd changes user's password to newPassword. A caller changing their
// own gives the current one as password; an admin may give "" instead.
// It ends user's other sessions.
func (c *Client) Passwd(ctx context.Context, user, password, newPassword string, opts ...CallOption) error {
	if err := needUser(user); err != nil {
		return err
	}
	if err := needPassword("new_password", newPassword); err != nil {
		return err
	}
	_, _, err := c.tercero(ctx, wire.OpPasswd, &wire.UserData{User: user, Password: password, NewPassword: newPassword}, true, opts)
	return err
}

// SetRoles replaces user's roles with roles, at least one (to stop a user
// acting at all, Disable them). It needs the admin role.
func (c *Client) SetRoles(ctx context.Context, user string, roles []string, opts ...CallOption) error {
	if err := needUser(user); err != nil {
		return err
	}
	if err := checkRoles(roles, true); err != nil {
		return err
	}
	_, _, err := c.tercero(ctx, wire.OpRoles, &wire.UserData{User: user, Roles: roles}, true, opts)
	return err
}

// Disable stops user logging in and ends their sessions. It needs the
// admin role.
func (c *Client) Disable(ctx context.Context, user string, opts ...CallOption) error {
	if err := needUser(user); err != nil {
		return err
	}
	_, _, err := c.tercero(ctx, wire.OpDisable, &wire.UserData{User: user}, true, opts)
	return err
}

// Enable lets a disabled user log in again. It needs the admin role.
func (c *Client) Enable(ctx context.Context, user string, opts ...CallOption) error {
	if err := needUser(user); err != nil {
		return err
	}
	_, _, err := c.tercero(ctx, wire.OpEnable, &wire.UserData{User: user}, true, opts)
	return err
}

// User reads user ("" for the caller), which needs the caller to be that
// user or an admin. The row holds no password material: the user's id,
// name, roles, disabled, created and changed, as tercero answers them.
func (c *Client) User(ctx context.Context, user string, opts ...CallOption) (wire.Row, error) {
	reply, _, err := c.tercero(ctx, wire.OpUser, userData(user), true, opts)
	if err != nil {
		return nil, err
	}
	if len(reply.Rows) == 0 {
		return nil, wire.Errorf(wire.CodeNotFound, "tercero answered user (event %s) without a row", reply.Event)
	}
	return reply.Rows[0], nil
}

// tercero sends op with data (nil for none) to tercero and waits for the
// reply. own says whether the client's session goes with it (unless opts
// give WithSession); sent is the session pointer it went with, if any.
func (c *Client) tercero(ctx context.Context, op wire.Op, data *wire.UserData, own bool, opts []CallOption) (reply *wire.Reply, sent *string, err error) {
	headers, sent, err := c.headers(opts, own)
	if err != nil {
		return nil, nil, err
	}
	req := wire.Request{Op: op}
	if data != nil {
		// A UserData always encodes; its error could only quote it.
		if req.Data, err = json.Marshal(data); err != nil {
			return nil, nil, fmt.Errorf("encode %s data", op)
		}
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s request", op)
	}
	reply, err = c.send(ctx, c.ids.New(), op.RoutingKey(), op.Writes(), body, headers)
	return reply, sent, err
}

// userData is the data naming user, or nil for "".
func userData(user string) *wire.UserData {
	if user == "" {
		return nil
	}
	return &wire.UserData{User: user}
}

func needUser(user string) error {
	if user == "" {
		return wire.FieldError(wire.CodeBadRequest, "user", "user is empty: give the login name")
	}
	return nil
}

// needPassword refuses an empty password; it never quotes one.
func needPassword(field, password string) error {
	if password == "" {
		return wire.FieldError(wire.CodeBadRequest, field, "%s is empty", field)
	}
	return nil
}

func checkRoles(roles []string, need bool) error {
	if need && len(roles) == 0 {
		return wire.FieldError(wire.CodeBadRequest, "roles", "roles is empty: give at least one role (Disable stops a user instead)")
	}
	for i, r := range roles {
		if r == "" {
			return wire.FieldError(wire.CodeBadRequest, "roles", "roles[%d] is empty", i)
		}
	}
	return nil
}

func errCode(err error) wire.Code {
	if we, ok := wire.AsError(err); ok {
		return we.Code
	}
	return ""
}

package account

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/beds-project/beds/services/tercero/password"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

// The child events of a login's writes (its failures, its rehash, its
// session), fixed so that a redelivered login makes each under the same
// event as the first delivery did.
const (
	childFailAccount = 2
	childFailCaller  = 3
	childRehash      = 4
	childSession     = 5
	// maxSessionTries bounds the session creates one login tries: each
	// delivery of a login finds the creates of those before it replayed.
	maxSessionTries = 32
)

// loginFailed is the one answer to every failed login.
var loginFailed = wire.Errorf(wire.CodeUnauthenticated, "login failed: unknown user, wrong password or disabled user")

// sessionFields are the sessions fields a listing holds; the ID is the
// hash of a token, never the token.
var sessionFields = []string{"id", "created", "seen", "expires"}

// login checks data user and password and opens a session.
func (r *request) login(ctx context.Context) (*wire.Reply, error) {
	d := r.d
	if d.User == "" || d.Password == "" {
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "login needs data user and password")
	}
	if d.NewPassword != "" || d.Roles != nil || d.Session != "" {
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "login takes data user, password and client only")
	}
	subjects := []string{"account:" + d.User, "caller:" + callerSubject(r.caller, r.m.Delivery.UserId, d.Client)}
	if err := r.limited(ctx, subjects); err != nil {
		return nil, err
	}

	a, err := r.h.accounts.one(ctx, filter{"name": d.User}, "id", "name", "hash", "roles", "disabled")
	if err != nil {
		return nil, err
	}
	var ok, rehash bool
	if a == nil {
		err = r.h.hasher.Spend(ctx, d.Password)
	} else {
		ok, rehash, err = r.h.hasher.Verify(ctx, d.Password, rowString(a, "hash"))
		if errors.Is(err, password.ErrMalformed) {
			r.m.Log().Error("a user's stored password hash is malformed; they cannot log in until an admin sets a new password", "user", d.User)
			ok, err = false, r.h.hasher.Spend(ctx, d.Password) // cost what a verification costs
		}
	}
	if err != nil {
		return nil, err
	}
	if !ok || rowBool(a, "disabled") {
		return nil, r.failed(ctx, subjects)
	}

	now := r.h.now()
	id := rowInt(a, "id")
	if rehash {
		enc, err := r.h.hasher.Hash(ctx, d.Password)
		if err == nil {
			_, err = r.h.accounts.update(ctx, lineage.Child(r.m.Event, childRehash), filter{"id": id}, filter{"hash": enc, "changed": stamp(now)})
		}
		if err != nil {
			r.m.Log().Warn("rehashing a password with the configured parameters failed; the login goes on", "user", d.User, "err", err)
		} else {
			r.m.Log().Info("password rehashed with the configured argon2 parameters", "user", d.User)
		}
	}

	ttl := r.h.cfg.Tercero.SessionTTL.D()
	expires := now.Add(ttl)
	for try := 0; try < maxSessionTries; try++ {
		token, err := newToken()
		if err != nil {
			return nil, err
		}
		sid := SessionID(token)
		res, err := r.h.sessions.create(ctx, lineage.Child(r.m.Event, childSession+try),
			filter{"id": sid, "user": id, "created": stamp(now), "seen": stamp(now), "expires": stamp(expires)})
		if err != nil {
			return nil, err
		}
		if res.Replayed {
			// An earlier delivery of this login made this session; its
			// token is unknowable now, so make another.
			continue
		}
		r.m.Log().Info("login", "user", d.User, "session", sid, "expires", expires)
		return &wire.Reply{Affected: 1, Identity: &wire.Identity{User: id, Name: rowString(a, "name"), Roles: rowRoles(a, "roles"),
			Session: sid, Expires: expires.UTC().Truncate(time.Microsecond), Token: token}}, nil
	}
	return nil, fmt.Errorf("login of user %s: %d session creates all came back replayed", d.User, maxSessionTries)
}

// callerSubject names who a login's per-caller limit counts: the end
// client data client names when a trusted service sends it (a front end
// logging its users in), else the RabbitMQ user that sent it (RabbitMQ
// checks user_id), else "anonymous". A caller that is not a trusted
// service cannot pick its own subject to escape the limit.
func callerSubject(caller *wire.Identity, userID, client string) string {
	switch {
	case client != "" && caller != nil && caller.Service:
		return client
	case userID != "":
		return userID
	}
	return "anonymous"
}

// limited answers rate_limited when a subject has failed too often within
// the window.
func (r *request) limited(ctx context.Context, subjects []string) error {
	at := r.h.cfg.Tercero.Attempts
	window := at.Window.D()
	since := r.h.now().Add(-window)
	for i, s := range subjects {
		limit := at.Account
		if i > 0 {
			limit = at.Caller
		}
		f := filter{"subject": s, "at": filter{"gte": stamp(since)}}
		n, err := r.h.failures.count(ctx, f)
		if err != nil {
			return err
		}
		if n < int64(limit) {
			continue
		}
		retry := r.h.now().Add(window)
		if oldest, err := r.h.failures.read(ctx, f, []string{"at"}, []string{"at"}, 1); err == nil && len(oldest) == 1 {
			retry = rowTime(oldest[0], "at").Add(window)
		}
		kind := "account"
		if i > 0 {
			kind = "caller"
		}
		r.m.Log().Warn("login refused: too many failed logins", "subject", s, "failures", n, "limit", limit, "retry_after", retry)
		return wire.Errorf(wire.CodeRateLimited, "too many failed logins for this %s: try again after %s", kind, retry.UTC().Format(time.RFC3339))
	}
	return nil
}

// failed records a failed login for each subject and returns its answer.
func (r *request) failed(ctx context.Context, subjects []string) error {
	for i, s := range subjects {
		if _, err := r.h.failures.create(ctx, lineage.Child(r.m.Event, childFailAccount+i), filter{"subject": s}); err != nil {
			return err
		}
	}
	r.m.Log().Info("login failed", "account", subjects[0], "caller", subjects[1])
	return loginFailed
}

// newToken returns a session token: 32 random bytes, hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random session token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// identity is the caller's identity without a token.
func (r *request) identity() *wire.Identity {
	id := *r.caller
	id.Token = ""
	return &id
}

// refresh restarts the idle timer of the caller's session.
func (r *request) refresh(ctx context.Context) (*wire.Reply, error) {
	if err := r.needSession(); err != nil {
		return nil, err
	}
	res, err := r.h.sessions.update(ctx, r.event(), filter{"id": r.caller.Session}, filter{"seen": stamp(r.h.now())})
	if isCode(err, wire.CodeNotFound) {
		return nil, ended
	}
	if err != nil {
		return nil, err
	}
	return &wire.Reply{Affected: res.Affected, Identity: r.identity()}, nil
}

// logout ends the caller's session, or the one data session names: one of
// the caller's own, or any for an admin.
func (r *request) logout(ctx context.Context) (*wire.Reply, error) {
	if err := r.needCaller(); err != nil {
		return nil, err
	}
	sid := r.d.Session
	if sid == "" {
		if r.caller.Session == "" {
			return nil, wire.FieldError(wire.CodeBadRequest, "data.session", "logout needs the session token in header %s, or data session naming a session", wire.HeaderSession)
		}
		sid = r.caller.Session
	}
	f := filter{"id": sid}
	if !r.admin() {
		if r.caller.User == 0 {
			return nil, wire.Errorf(wire.CodeForbidden, "logout of a session by a service needs the %s role", wire.RoleAdmin)
		}
		f["user"] = r.caller.User // another's session is not found
	}
	res, err := r.h.sessions.run(ctx, r.event(), &wire.Request{Op: wire.OpDelete, Filter: encode(f)})
	if isCode(err, wire.CodeNotFound) {
		return nil, wire.FieldError(wire.CodeNotFound, "data.session", "no such session of yours")
	}
	if err != nil {
		return nil, err
	}
	r.m.Log().Info("logout", "session", sid, "by", r.caller.Name)
	return &wire.Reply{Affected: res.Affected}, nil
}

// revoke ends every session of data user (the caller's own when it names
// none).
func (r *request) revoke(ctx context.Context) (*wire.Reply, error) {
	a, err := r.target(ctx, "id", "name")
	if err != nil {
		return nil, err
	}
	n, err := r.h.sessions.deleteAll(ctx, filter{"user": rowInt(a, "id")}, r.h.cfg.Tercero.PurgeBatch, r.event)
	if err != nil {
		return nil, err
	}
	r.m.Log().Info("sessions revoked", "user", rowString(a, "name"), "by", r.caller.Name, "sessions", n)
	return &wire.Reply{Affected: n}, nil
}

// list answers the open sessions of data user (the caller's own when it
// names none): id, created, seen and expires, never a token.
func (r *request) list(ctx context.Context) (*wire.Reply, error) {
	a, err := r.target(ctx, "id")
	if err != nil {
		return nil, err
	}
	now := r.h.now()
	rows, err := r.h.sessions.read(ctx, filter{
		"user":    rowInt(a, "id"),
		"expires": filter{"gt": stamp(now)},
		"seen":    filter{"gt": stamp(now.Add(-r.h.cfg.Tercero.IdleTimeout.D()))},
	}, sessionFields, []string{"expires"}, r.h.cfg.Limits.MaxLimit)
	if err != nil {
		return nil, err
	}
	return &wire.Reply{Rows: rows, Count: int64(len(rows)), Columns: sessionFields}, nil
}

// whoami answers the identity of the caller's session.
func (r *request) whoami() (*wire.Reply, error) {
	if err := r.needSession(); err != nil {
		return nil, err
	}
	return &wire.Reply{Identity: r.identity()}, nil
}

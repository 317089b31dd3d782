package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/beds-project/beds/services/tercero/password"
	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Config is what a Handler serves with.
type Config struct {
	Templates *template.Registry     // holding accounts, sessions and failures
	Stores    map[string]store.Store // by store name
	Limits    store.Limits
	Tercero   config.Tercero
	Hasher    *password.Hasher
	// Log is for work without a request (resolving outside a broker,
	// the purge); requests log with their own logger.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the user and session ops. It is safe for concurrent use.
type Handler struct {
	cfg                          Config
	accounts, sessions, failures *table
	hasher                       *password.Hasher
	now                          func() time.Time
	log                          *slog.Logger
	ids                          *lineage.Generator
}

var (
	_ dispatch.Handler = (*Handler)(nil)
	_ access.Resolver  = (*Handler)(nil)
)

// New returns a handler over cfg's templates and stores.
func New(cfg Config) (*Handler, error) {
	h := &Handler{cfg: cfg, hasher: cfg.Hasher, now: cfg.Now, log: cfg.Log, ids: lineage.NewGenerator()}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.hasher == nil {
		return nil, errors.New("account: no password hasher")
	}
	for _, tb := range []struct {
		name string
		dst  **table
	}{{TemplateAccounts, &h.accounts}, {TemplateSessions, &h.sessions}, {TemplateFailures, &h.failures}} {
		t := cfg.Templates.Get(tb.name)
		if t == nil {
			return nil, fmt.Errorf("account: template %s is not loaded: tercero needs its own templates", tb.name)
		}
		s := cfg.Stores[t.Store]
		if s == nil {
			return nil, fmt.Errorf("account: template %s: store %s is not open", tb.name, t.Store)
		}
		*tb.dst = &table{t: t, s: s, limits: cfg.Limits}
	}
	return h, nil
}

// messageKey carries the request being handled in a context, for the
// resolver, which access.Authenticate calls with the context only.
type messageKey struct{}

// Screen is the middleware that runs before authentication: it refuses
// what is not a user or session op, and members such ops do not take,
// and hands the message on in the context so that Resolve can log under
// the request's event and write under its child event 1.
func (h *Handler) Screen(next dispatch.Handler) dispatch.Handler {
	return dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) *wire.Reply {
		req := m.Request
		if !req.Op.Tercero() {
			return fail(m, notTercero(req))
		}
		if err := checkMembers(req); err != nil {
			return fail(m, err)
		}
		return next.Handle(context.WithValue(ctx, messageKey{}, m), m)
	})
}

// Handle implements dispatch.Handler: m.Caller is set (access.Authenticate
// runs before it).
func (h *Handler) Handle(ctx context.Context, m *dispatch.Message) *wire.Reply {
	d, err := decodeData(m.Request.Data)
	if err != nil {
		return fail(m, err)
	}
	r := &request{h: h, m: m, d: d, caller: m.Caller, next: 2}
	var reply *wire.Reply
	switch m.Request.Op {
	case wire.OpRegister:
		reply, err = r.register(ctx)
	case wire.OpPasswd:
		reply, err = r.passwd(ctx)
	case wire.OpRoles:
		reply, err = r.roles(ctx)
	case wire.OpDisable:
		reply, err = r.disable(ctx, true)
	case wire.OpEnable:
		reply, err = r.disable(ctx, false)
	case wire.OpUser:
		reply, err = r.user(ctx)
	case wire.OpLogin:
		reply, err = r.login(ctx)
	case wire.OpRefresh:
		reply, err = r.refresh(ctx)
	case wire.OpLogout:
		reply, err = r.logout(ctx)
	case wire.OpRevoke:
		reply, err = r.revoke(ctx)
	case wire.OpSessions:
		reply, err = r.list(ctx)
	case wire.OpWhoami:
		reply, err = r.whoami()
	default:
		err = notTercero(m.Request)
	}
	if err != nil {
		return fail(m, err)
	}
	reply.OK, reply.Event = true, m.Event
	return reply
}

// fail answers err; an error the contract does not name is logged with its
// detail (never a secret: this package puts none in errors) and answered
// internal.
func fail(m *dispatch.Message, err error) *wire.Reply {
	we, known := wire.AsError(err)
	if !known {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			we = wire.Errorf(wire.CodeTimeout, "the request's deadline passed while tercero worked on it")
		} else {
			m.Log().Error("user or session op failed", "op", m.Request.Op, "err", err)
		}
	}
	return wire.ErrorReply(m.Event, we)
}

// request is one user or session request being answered.
type request struct {
	h      *Handler
	m      *dispatch.Message
	d      *wire.UserData
	caller *wire.Identity
	next   int // the child number of the request's next write
}

// event returns the event ID of the request's next write.
func (r *request) event() string {
	e := lineage.Child(r.m.Event, r.next)
	r.next++
	return e
}

func (r *request) admin() bool { return r.caller != nil && r.caller.Has(wire.RoleAdmin) }

// needCaller fails unless somebody known sent the request.
func (r *request) needCaller() error {
	if r.caller == nil {
		return wire.Errorf(wire.CodeUnauthenticated, "%s needs a session: log in and send the token in header %s", r.m.Request.Op, wire.HeaderSession)
	}
	return nil
}

// needAdmin fails unless the caller has the admin role.
func (r *request) needAdmin() error {
	if err := r.needCaller(); err != nil {
		return err
	}
	if !r.admin() {
		return wire.Errorf(wire.CodeForbidden, "%s needs the %s role", r.m.Request.Op, wire.RoleAdmin)
	}
	return nil
}

// needSession fails unless the caller holds a session.
func (r *request) needSession() error {
	if r.caller == nil || r.caller.Session == "" {
		return wire.Errorf(wire.CodeUnauthenticated, "%s needs the session token in header %s", r.m.Request.Op, wire.HeaderSession)
	}
	return nil
}

// SessionID returns the ID a session with token is stored under: the hex
// SHA-256 of the token.
func SessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ended is the error of a session token that does not resolve.
var ended = wire.Errorf(wire.CodeUnauthenticated, "the session is unknown or has ended: log in again")

// Resolve implements access.Resolver over the sessions template: the
// identity of the session whose token is token, when it has not expired,
// has not been idle past the timeout and its user is enabled. It restarts
// the idle timer when the session was last seen [tercero] touch ago or
// more, under child event 1 of the request being handled.
func (h *Handler) Resolve(ctx context.Context, token string) (*wire.Identity, error) {
	log := h.log
	m, _ := ctx.Value(messageKey{}).(*dispatch.Message)
	if m != nil {
		log = m.Log()
	}
	id := SessionID(token)
	s, err := h.sessions.one(ctx, filter{"id": id})
	if err != nil {
		return nil, err
	}
	now := h.now()
	tc := h.cfg.Tercero
	if s == nil || !open(s, now, tc.IdleTimeout.D()) {
		return nil, ended
	}
	a, err := h.accounts.one(ctx, filter{"id": rowInt(s, "user")}, "id", "name", "roles", "disabled")
	if err != nil {
		return nil, err
	}
	if a == nil || rowBool(a, "disabled") {
		return nil, ended
	}
	if now.Sub(rowTime(s, "seen")) >= tc.Touch.D() {
		event := h.ids.New()
		if m != nil {
			event = lineage.Child(m.Event, 1)
		}
		if _, err := h.sessions.update(ctx, event, filter{"id": id}, filter{"seen": stamp(now)}); err != nil && !isCode(err, wire.CodeNotFound) {
			log.Warn("restarting a session's idle timer failed; it may end early", "session", id, "err", err)
		}
	}
	return &wire.Identity{User: rowInt(a, "id"), Name: rowString(a, "name"), Roles: rowRoles(a, "roles"),
		Session: id, Expires: rowTime(s, "expires")}, nil
}

// open reports whether session row s is neither expired nor idle at now.
func open(s wire.Row, now time.Time, idle time.Duration) bool {
	return now.Before(rowTime(s, "expires")) && now.Before(rowTime(s, "seen").Add(idle))
}

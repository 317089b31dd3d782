package access

import (
	"context"
	"errors"
	"slices"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/wire"
)

// Resolver finds who holds a session token.
type Resolver interface {
	// Resolve returns the identity of the session whose token is token.
	// It fails with a *wire.Error: unauthenticated when the session is
	// unknown, ended or its user disabled, unavailable or timeout when
	// whoever knows cannot be asked now.
	Resolve(ctx context.Context, token string) (*wire.Identity, error)
}

// MaxToken bounds the session header a node reads; a login's token is 64
// hex characters.
const MaxToken = 256

// Authenticate returns middleware that sets Message.Caller before the
// handler runs, by the rules of the package: the session of header
// x-beds-session, resolved with r; else the service its validated
// user_id names in trusted (a RabbitMQ user and its roles); else nobody.
// A request whose token does not resolve is answered with the resolver's
// error and never reaches the handler.
func Authenticate(r Resolver, trusted map[string][]string) dispatch.Middleware {
	return func(next dispatch.Handler) dispatch.Handler {
		return dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) *wire.Reply {
			caller, err := identify(ctx, r, trusted, m)
			if err != nil {
				we, known := wire.AsError(err)
				if !known {
					m.Log().Error("resolving the session failed", "err", err)
				}
				return wire.ErrorReply(m.Event, we)
			}
			m.Caller = caller
			return next.Handle(ctx, m)
		})
	}
}

// identify returns who sent m, nil for nobody known.
func identify(ctx context.Context, r Resolver, trusted map[string][]string, m *dispatch.Message) (*wire.Identity, error) {
	if v, ok := m.Delivery.Headers[wire.HeaderSession]; ok {
		token, _ := v.(string)
		if token == "" || len(token) > MaxToken {
			return nil, wire.FieldError(wire.CodeUnauthenticated, wire.HeaderSession,
				"the session header must hold the token login answered (a string of at most %d characters)", MaxToken)
		}
		if r == nil {
			return nil, errors.New("a session token arrived but this node has no resolver")
		}
		return r.Resolve(ctx, token)
	}
	return Trusted(trusted, m.Delivery.UserId), nil
}

// Trusted returns the identity of a service trusted as RabbitMQ user
// user, or nil when trusted does not name it.
func Trusted(trusted map[string][]string, user string) *wire.Identity {
	roles, ok := trusted[user]
	if user == "" || !ok {
		return nil
	}
	return &wire.Identity{Name: user, Roles: slices.Clone(roles), Service: true}
}

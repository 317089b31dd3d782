package dispatch

import (
	"context"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

// Deadline gives the handler a context that ends at the caller's deadline:
// the delivery's expiration (milliseconds, set by the client from its own
// deadline) counted from when the node received it, or fallback when the
// caller set none; never later than limit after arrival (0 sets no limit),
// so a caller cannot make the node work on its request for longer. A
// request whose deadline has already passed is answered timeout without
// running.
func Deadline(fallback, limit time.Duration) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			d := fallback
			if ms, ok := expiration(m.Delivery.Expiration); ok {
				d = ms
			}
			if limit > 0 && d > limit {
				d = limit
			}
			ctx, cancel := context.WithDeadline(ctx, m.Received.Add(d))
			defer cancel()
			if ctx.Err() != nil {
				return wire.ErrorReply(m.Event, wire.Errorf(wire.CodeTimeout, "the request's deadline passed before it was handled"))
			}
			return next.Handle(ctx, m)
		})
	}
}

// expiration parses an AMQP expiration property: milliseconds as decimal
// digits. It reports false for an empty, malformed or absurdly large one.
func expiration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var ms int64
	for _, c := range s {
		if c < '0' || c > '9' || ms > 1<<40 {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
	}
	return time.Duration(ms) * time.Millisecond, true
}

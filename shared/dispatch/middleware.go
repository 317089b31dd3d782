package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// Recover answers a panicking handler with an internal error and logs the
// stack; the worker goes on with the next delivery.
func Recover() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) (reply *wire.Reply) {
			defer func() {
				if p := recover(); p != nil {
					m.Log().Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					reply = wire.ErrorReply(m.Event, wire.Errorf(wire.CodeInternal, "internal error: the node's log has the details under this event ID"))
				}
			}()
			return next.Handle(ctx, m)
		})
	}
}

// Log writes one line per request at debug level, and one at warn level for
// every system error, each with the event ID.
func Log() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			reply := next.Handle(ctx, m)
			req := m.Request
			level := slog.LevelDebug
			code := ""
			if reply != nil && reply.Error != nil {
				code = string(reply.Error.Code)
				if reply.Error.Code.Class() == wire.ClassSystem {
					level = slog.LevelWarn
				}
			}
			if m.base.Enabled(ctx, level) { // without making the event's logger
				m.Log().Log(ctx, level, "request",
					"template", req.Template, "op", req.Op, "code", code,
					"took", time.Since(m.Received), "redelivered", m.Delivery.Redelivered)
			}
			return reply
		})
	}
}

// Observer receives one observation per handled request; metrics
// implement it.
type Observer interface {
	Observe(template string, op wire.Op, code wire.Code, took time.Duration)
}

// Metrics reports every request to o. An ok reply has the empty code.
func Metrics(o Observer) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			reply := next.Handle(ctx, m)
			var code wire.Code
			if reply != nil && reply.Error != nil {
				code = reply.Error.Code
			}
			o.Observe(m.Request.Template, m.Request.Op, code, time.Since(m.Received))
			return reply
		})
	}
}

// Deadline gives the handler a context that ends at the caller's deadline:
// the delivery's expiration (milliseconds, set by the client from its own
// deadline) counted from when the node received it, or fallback when the
// caller set none. A request whose deadline has already passed is answered
// timeout without running.
func Deadline(fallback time.Duration) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			d := fallback
			if ms, ok := expiration(m.Delivery.Expiration); ok {
				d = ms
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

// Decode checks the delivery's size, content type and encoding, decodes
// the body into m.Request, and answers a request that fails any of these
// without calling the next handler.
func Decode(maxBody int) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			if err := decode(m.Request, m.Delivery, maxBody); err != nil {
				we, _ := wire.AsError(err)
				return wire.ErrorReply(m.Event, we)
			}
			return next.Handle(ctx, m)
		})
	}
}

func decode(req *wire.Request, d *amqp.Delivery, maxBody int) error {
	if maxBody > 0 && len(d.Body) > maxBody {
		return wire.Errorf(wire.CodeTooLarge, "body is %d bytes: at most %d", len(d.Body), maxBody)
	}
	if d.ContentType != "" && d.ContentType != wire.ContentType {
		return wire.Errorf(wire.CodeBadRequest, "content type %q: requests are %s", d.ContentType, wire.ContentType)
	}
	if d.ContentEncoding != "" && d.ContentEncoding != "identity" {
		return wire.Errorf(wire.CodeBadRequest, "content encoding %q is not supported", d.ContentEncoding)
	}
	return req.Decode(d.Body)
}

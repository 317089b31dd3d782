package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

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

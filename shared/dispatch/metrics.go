package dispatch

import (
	"context"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

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

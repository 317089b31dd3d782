package dispatch

import (
	"context"
	"fmt"
	"runtime/debug"

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

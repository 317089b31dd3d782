package dispatch

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/beds-project/beds/shared/wire"
)

// Recover answers a panicking handler with an internal error and logs the
// stack; the worker goes on with the next delivery. It also answers
// internal for a handler that gives no reply, or a failed one without an
// error, so every reply that leaves it has a code.
//
// A Broker runs it twice: outermost, so that a panic anywhere in the
// chain (logging, metrics, the Observer, the deadline, decoding) is
// answered too, and innermost, so that Log and Metrics still see a
// handler's panic as the internal reply it becomes.
func Recover() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) (reply *wire.Reply) {
			defer func() {
				if p := recover(); p != nil {
					quietly(func() { m.Log().Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack())) })
					reply = wire.ErrorReply(m.Event, wire.Errorf(wire.CodeInternal, "internal error: the node's log has the details under this event ID"))
				}
			}()
			return sound(next.Handle(ctx, m), m)
		})
	}
}

// sound returns reply, or an internal error reply in place of a missing
// one, and gives a failed reply without an error an internal one.
func sound(reply *wire.Reply, m *Message) *wire.Reply {
	switch {
	case reply == nil:
		m.Log().Error("handler gave no reply; answering internal")
		return wire.ErrorReply(m.Event, wire.Errorf(wire.CodeInternal, "handler gave no reply"))
	case !reply.OK && reply.Error == nil:
		m.Log().Error("handler failed without an error; answering internal")
		reply.Error = wire.Errorf(wire.CodeInternal, "internal error: the node's log has the details under this event ID")
	}
	return reply
}

// quietly runs f, a log call, and drops a panic of its own: a logger (or
// a panic value's String method) that panics while a panic is reported
// must not take the process down.
func quietly(f func()) {
	defer func() { _ = recover() }()
	f()
}

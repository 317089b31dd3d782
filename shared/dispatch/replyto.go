package dispatch

import (
	"context"
	"strings"

	"github.com/beds-project/beds/shared/wire"
)

// ReplyTo refuses, as bad_request and without calling the next handler, a
// request whose reply_to names a queue the node may not publish to (see
// ReplyToAllowed): the node publishes with its own credentials, so an
// unchecked reply_to would let a caller write into any queue, beds.events
// included. A Broker never publishes to such a name: it dead-letters the
// request instead.
func ReplyTo(prefix string) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			if to := m.Delivery.ReplyTo; to != "" && !ReplyToAllowed(to, prefix) {
				return wire.ErrorReply(m.Event, replyToError(to, prefix))
			}
			return next.Handle(ctx, m)
		})
	}
}

// ReplyToAllowed reports whether the node may publish a reply to the
// queue name: RabbitMQ's direct reply-to (amq.rabbitmq.reply-to and the
// amq.rabbitmq.reply-to.* names RabbitMQ gives it on delivery), and, when
// prefix is set, names starting with it, except the contract's own
// queues.
func ReplyToAllowed(name, prefix string) bool {
	if name == wire.DirectReplyTo || strings.HasPrefix(name, wire.DirectReplyTo+".") {
		return true
	}
	return prefix != "" && strings.HasPrefix(name, prefix) && name != wire.EventsQueue && name != wire.DeadQueue
}

func replyToError(name, prefix string) *wire.Error {
	where := wire.DirectReplyTo
	if prefix != "" {
		where += " or a queue named " + prefix + "..."
	}
	return wire.FieldError(wire.CodeBadRequest, "reply_to", "reply_to %q is refused: the node replies only to %s", name, where)
}

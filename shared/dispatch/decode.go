package dispatch

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// Decode checks the delivery's size, content type and encoding, decodes
// the body into m.Request, and answers a request that fails any of these
// without calling the next handler. A maxBody of 0 sets no size limit.
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

package client

import (
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

// CallOption sets an option of one call of Do, Send, DoRaw, Batch or
// Lineage. Options are applied in order; an invalid one fails the call
// with a bad_request *wire.Error before anything is sent.
type CallOption func(*call)

// call is what one call's options asked for.
type call struct {
	parent string // header x-beds-parent
	trace  string // header traceparent
	token  string // header x-beds-session
	err    error  // the first invalid option
}

// fail keeps the first invalid option's error.
func (o *call) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// WithParent makes the request a child of event: it is sent with header
// x-beds-parent, and the node records it in event's lineage tree.
// event must be a valid event ID (printable ASCII without spaces, at most
// 200 bytes).
func WithParent(event string) CallOption {
	return func(o *call) {
		if !lineage.Valid(event) {
			o.fail(wire.FieldError(wire.CodeBadRequest, wire.HeaderParent,
				"parent event ID %q: printable ASCII without spaces, 1 to %d bytes", clip(event), lineage.MaxLen))
			return
		}
		o.parent = event
	}
}

// WithTraceparent sends the request with the W3C trace context header
// traceparent tp, which the node keeps in the request's lineage and
// passes on. tp must pass CheckTraceparent.
func WithTraceparent(tp string) CallOption {
	return func(o *call) {
		if err := wire.CheckTraceparent(tp); err != nil {
			o.fail(err)
			return
		}
		o.trace = tp
	}
}

// WithSession sends the request on behalf of the user whose session token
// is token (what Login answered), in header x-beds-session. A call
// without it acts as the client's RabbitMQ user (Options.Session sets a
// token for every call).
func WithSession(token string) CallOption {
	return func(o *call) {
		if token == "" || len(token) > 256 {
			o.fail(wire.FieldError(wire.CodeBadRequest, wire.HeaderSession, "session token: 1 to 256 characters, as login answered it"))
			return
		}
		o.token = token
	}
}

// callHeaders applies opts and returns the AMQP headers they ask for (nil
// for none), or the error of the first invalid one.
func callHeaders(opts []CallOption) (amqp.Table, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	var o call
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	if o.parent == "" && o.trace == "" && o.token == "" {
		return nil, nil
	}
	h := make(amqp.Table, 3)
	if o.token != "" {
		h[wire.HeaderSession] = o.token
	}
	if o.parent != "" {
		h[wire.HeaderParent] = o.parent
	}
	if o.trace != "" {
		h[wire.HeaderTraceParent] = o.trace
	}
	return h, nil
}

// clip shortens a caller's value for an error message.
func clip(s string) string {
	const most = 80
	if len(s) > most {
		return s[:most] + "..."
	}
	return s
}

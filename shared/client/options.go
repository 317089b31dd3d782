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
// is token (what Login answered), in header x-beds-session, instead of
// the client's own session (Options.Session, SetSession). A call with
// neither acts as the client's RabbitMQ user.
func WithSession(token string) CallOption {
	return func(o *call) {
		if err := checkToken(token); err != nil {
			o.fail(err)
			return
		}
		o.token = token
	}
}

// checkToken returns a bad_request *wire.Error when token cannot be a
// session token. It never quotes the token.
func checkToken(token string) error {
	if token == "" || len(token) > 256 {
		return wire.FieldError(wire.CodeBadRequest, wire.HeaderSession, "session token: 1 to 256 characters, as login answered it")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return wire.FieldError(wire.CodeBadRequest, wire.HeaderSession, "session token: printable ASCII without spaces, as login answered it")
		}
	}
	return nil
}

// SetSession makes token the session sent with every call that does not
// give WithSession (as Options.Session does at Dial); "" stops sending
// one, so calls act as the client's RabbitMQ user again. Calls already
// sent keep the session they went with. It is safe for concurrent use,
// and fails with bad_request, changing nothing, when token cannot be a
// session token.
func (c *Client) SetSession(token string) error {
	if token == "" {
		c.token.Store(nil)
		return nil
	}
	if err := checkToken(token); err != nil {
		return err
	}
	c.token.Store(&token)
	return nil
}

// headers applies opts and returns the AMQP headers they ask for (nil for
// none), or the error of the first invalid one. Without WithSession among
// opts, the client's own session goes in x-beds-session when own is true;
// sent is then the pointer it was loaded from (nil when none went).
func (c *Client) headers(opts []CallOption, own bool) (h amqp.Table, sent *string, err error) {
	var o call
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.err != nil {
		return nil, nil, o.err
	}
	if o.token == "" && own {
		if sent = c.token.Load(); sent != nil {
			o.token = *sent
		}
	}
	if o.parent == "" && o.trace == "" && o.token == "" {
		return nil, nil, nil
	}
	h = make(amqp.Table, 3)
	if o.token != "" {
		h[wire.HeaderSession] = o.token
	}
	if o.parent != "" {
		h[wire.HeaderParent] = o.parent
	}
	if o.trace != "" {
		h[wire.HeaderTraceParent] = o.trace
	}
	return h, sent, nil
}

// clip shortens a caller's value for an error message.
func clip(s string) string {
	const most = 80
	if len(s) > most {
		return s[:most] + "..."
	}
	return s
}

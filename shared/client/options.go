package client

import (
	"fmt"

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
		if err := CheckTraceparent(tp); err != nil {
			o.fail(err)
			return
		}
		o.trace = tp
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
	if o.parent == "" && o.trace == "" {
		return nil, nil
	}
	h := make(amqp.Table, 2)
	if o.parent != "" {
		h[wire.HeaderParent] = o.parent
	}
	if o.trace != "" {
		h[wire.HeaderTraceParent] = o.trace
	}
	return h, nil
}

// traceparentLen is the length of a version 00 traceparent.
const traceparentLen = len("00-") + 32 + len("-") + 16 + len("-") + 2

// CheckTraceparent returns nil when tp is a W3C trace context traceparent
// of version 00: "00-" then the trace ID (32 hex digits), "-", the parent
// ID (16 hex digits), "-" and the flags (2 hex digits), all lowercase,
// neither ID all zeros. Otherwise it returns a *wire.Error with code
// bad_request that says what is wrong.
func CheckTraceparent(tp string) error {
	bad := func(why string) error {
		return wire.FieldError(wire.CodeBadRequest, wire.HeaderTraceParent,
			"traceparent %q %s: want 00-<32 hex trace ID>-<16 hex parent ID>-<2 hex flags>, lowercase", clip(tp), why)
	}
	switch {
	case len(tp) != traceparentLen:
		return bad(fmt.Sprintf("has %d characters, not %d", len(tp), traceparentLen))
	case tp[2] != '-' || tp[35] != '-' || tp[52] != '-':
		return bad("is not four parts joined by '-'")
	case !lowerHex(tp[:2]) || !lowerHex(tp[3:35]) || !lowerHex(tp[36:52]) || !lowerHex(tp[53:]):
		return bad("holds a character that is not a lowercase hex digit")
	case tp[:2] != "00":
		return bad("is not version 00")
	case allZero(tp[3:35]):
		return bad("has an all-zero trace ID")
	case allZero(tp[36:52]):
		return bad("has an all-zero parent ID")
	}
	return nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// clip shortens a caller's value for an error message.
func clip(s string) string {
	const most = 80
	if len(s) > most {
		return s[:most] + "..."
	}
	return s
}

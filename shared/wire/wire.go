package wire

import (
	"encoding/json"
	"fmt"
)

// Version is the wire contract version this package implements.
const Version = 1

// Names of the AMQP objects every node and client agree on.
const (
	Exchange      = "beds"                  // topic exchange for every request
	EventsQueue   = "beds.events"           // data requests, consumed by every appserver
	DeadExchange  = "beds.dlx"              // dead-letter exchange
	DeadQueue     = "beds.dead"             // where unroutable and rejected messages end
	DirectReplyTo = "amq.rabbitmq.reply-to" // RabbitMQ direct reply-to pseudo queue
	ContentType   = "application/json"

	// RouteRead carries read, count and ping requests.
	RouteRead = "rec.read"
	// RouteWrite carries create, update and delete requests.
	RouteWrite = "rec.write"

	// HeaderParent names the parent event of a child event.
	HeaderParent = "x-beds-parent"
	// HeaderTraceParent is the W3C trace context header, passed through.
	HeaderTraceParent = "traceparent"
	// HeaderError carries the error code of a dead-lettered request.
	HeaderError = "x-beds-error"
	// HeaderErrorMessage carries the error message of a dead-lettered
	// request.
	HeaderErrorMessage = "x-beds-error-message"
	// HeaderEvent carries the event ID of a dead-lettered request, the
	// one its node logged it under.
	HeaderEvent = "x-beds-event"
	// HeaderNode names the node that dead-lettered a request.
	HeaderNode = "x-beds-node"
	// HeaderDeliveries carries how many times a request dead-lettered
	// for its delivery limit was delivered, as far as its node knows.
	HeaderDeliveries = "x-beds-deliveries"
	// HeaderFirstSeen and HeaderLastSeen carry when the node that
	// dead-lettered a request for its delivery limit first and last saw
	// it fail or come back (RFC 3339).
	HeaderFirstSeen = "x-beds-first-seen"
	HeaderLastSeen  = "x-beds-last-seen"
	// HeaderLastFailure carries why that node last failed to finish the
	// request, if it knows.
	HeaderLastFailure = "x-beds-last-failure"
	// DeadDeliveryLimit is the HeaderError of a request dead-lettered
	// because it was delivered more often than the delivery limit; it is
	// not an error code of replies (the request gets no reply).
	DeadDeliveryLimit = "delivery_limit"
)

// Op is an operation a request asks for.
type Op string

// The operations of the contract. Ping is answered by the node itself and
// names no template.
const (
	OpCreate Op = "create"
	OpRead   Op = "read"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
	OpCount  Op = "count"
	OpPing   Op = "ping"
)

// DataOps lists the template operations in their canonical order.
var DataOps = []Op{OpCreate, OpRead, OpUpdate, OpDelete, OpCount}

// Valid reports whether op is one of the contract's operations.
func (op Op) Valid() bool {
	switch op {
	case OpCreate, OpRead, OpUpdate, OpDelete, OpCount, OpPing:
		return true
	}
	return false
}

// Writes reports whether op changes data.
func (op Op) Writes() bool { return op == OpCreate || op == OpUpdate || op == OpDelete }

// RoutingKey returns the routing key a request for op is published with.
func (op Op) RoutingKey() string {
	if op.Writes() {
		return RouteWrite
	}
	return RouteRead
}

// Request is the body of a data request.
//
// Filter and Data are kept raw here and parsed against the template by
// package store, because only the template knows which names and value
// types are valid. A decoded request's Filter and Data are slices of the
// body it was decoded from: the body must outlive the request.
type Request struct {
	Template string          `json:"template,omitempty"`
	Op       Op              `json:"op"`
	Filter   json.RawMessage `json:"filter,omitempty"`
	Fields   []string        `json:"fields,omitempty"`
	Sort     []string        `json:"sort,omitempty"`
	Limit    int             `json:"limit,omitempty"`
	Offset   int             `json:"offset,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Check validates what a request must satisfy whatever its template.
func (r *Request) Check() error {
	switch {
	case r.Op == "":
		return Errorf(CodeBadRequest, "op is missing")
	case !r.Op.Valid():
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("unknown op %q: one of create, read, update, delete, count, ping", r.Op)}
	case r.Op != OpPing && r.Template == "":
		return Errorf(CodeBadRequest, "template is missing")
	case r.Limit < 0:
		return &Error{Code: CodeBadValue, Message: "limit must not be negative", Field: "limit"}
	case r.Offset < 0:
		return &Error{Code: CodeBadValue, Message: "offset must not be negative", Field: "offset"}
	}
	return nil
}

// Row is one record of a reply, keyed by the template's plain field names.
type Row map[string]any

// Reply is the body of every answer.
type Reply struct {
	OK       bool   `json:"ok"`
	Event    string `json:"event"`
	Node     string `json:"node,omitempty"`
	Rows     []Row  `json:"rows,omitempty"`
	Count    int64  `json:"count"`
	Affected int64  `json:"affected"`
	// Key is the key of the record a create made.
	Key   any    `json:"key,omitempty"`
	Error *Error `json:"error,omitempty"`
	// Columns, when set, orders the keys of every row in the encoded
	// reply (the template's field order); it is not sent itself.
	Columns []string `json:"-"`
}

// ErrorReply builds the reply for a failed request.
func ErrorReply(event string, err *Error) *Reply {
	return &Reply{OK: false, Event: event, Error: err}
}

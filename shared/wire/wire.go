package wire

import (
	"encoding/json"
	"fmt"
	"time"
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

// ValidTraceparent reports whether CheckTraceparent accepts tp.
func ValidTraceparent(tp string) bool { return CheckTraceparent(tp) == nil }

// traceparentLen is the length of a version 00 traceparent.
const traceparentLen = len("00-") + 32 + len("-") + 16 + len("-") + 2

// CheckTraceparent returns nil when tp is a W3C trace context traceparent
// of version 00: "00-" then the trace ID (32 hex digits), "-", the parent
// ID (16 hex digits), "-" and the flags (2 hex digits), all lowercase,
// neither ID all zeros. Otherwise it returns a *wire.Error with code
// bad_request that says what is wrong.
func CheckTraceparent(tp string) error {
	bad := func(why string) error {
		return FieldError(CodeBadRequest, HeaderTraceParent,
			"traceparent %q %s: want 00-<32 hex trace ID>-<16 hex parent ID>-<2 hex flags>, lowercase", clipped(tp), why)
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

// clipped shortens a caller's value for an error message.
func clipped(s string) string {
	const most = 80
	if len(s) > most {
		return s[:most] + "..."
	}
	return s
}

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
	// OpBatch carries several requests in Request.Batch, answered by one
	// reply whose Items answer them in order.
	OpBatch Op = "batch"
	// OpLineage reads the recorded lineage tree of Request.Event; it names
	// no template.
	OpLineage Op = "lineage"
)

// DataOps lists the template operations in their canonical order.
var DataOps = []Op{OpCreate, OpRead, OpUpdate, OpDelete, OpCount}

// Valid reports whether op is one of the contract's operations.
func (op Op) Valid() bool {
	switch op {
	case OpCreate, OpRead, OpUpdate, OpDelete, OpCount, OpPing, OpBatch, OpLineage:
		return true
	}
	return op.Tercero()
}

// Writes reports whether op changes data: a template write, or a user or
// session op other than reading one (user, sessions, whoami). The reply
// to a request that writes is confirmed before its delivery is
// acknowledged (package dispatch).
func (op Op) Writes() bool {
	switch op {
	case OpCreate, OpUpdate, OpDelete,
		OpRegister, OpPasswd, OpRoles, OpDisable, OpEnable,
		OpLogin, OpRefresh, OpLogout, OpRevoke:
		return true
	}
	return false
}

// RoutingKey returns the routing key a request for op is published with:
// "usr.<op>" or "ses.<op>" for tercero's ops, rec.write or rec.read for
// the rest. A batch goes as a write when any of its items writes
// (Request.RoutingKey).
func (op Op) RoutingKey() string {
	switch {
	case op.users():
		return "usr." + string(op)
	case op.sessions():
		return "ses." + string(op)
	case op.Writes():
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
	// Include names the relations a read fetches with its rows: REL
	// template names as seen from the read's template ("orders"), and
	// paths through them ("orders.items").
	Include []string `json:"include,omitempty"`
	// Batch holds the requests of an OpBatch request, none itself a batch.
	Batch []Request `json:"batch,omitempty"`
	// Event names the event an OpLineage request reads the tree of.
	Event string `json:"event,omitempty"`
	// Record asks the node to record this request's lineage even when it
	// only reads (writes are always recorded).
	Record bool `json:"record,omitempty"`
}

// Writes reports whether the request changes data: its op writes, or it
// is a batch holding a write.
func (r *Request) Writes() bool {
	if r.Op == OpBatch {
		for i := range r.Batch {
			if r.Batch[i].Op.Writes() {
				return true
			}
		}
		return false
	}
	return r.Op.Writes()
}

// RoutingKey returns the routing key the request is published with.
func (r *Request) RoutingKey() string {
	if r.Op.Tercero() {
		return r.Op.RoutingKey()
	}
	if r.Writes() {
		return RouteWrite
	}
	return RouteRead
}

// Check validates what a request must satisfy whatever its template.
func (r *Request) Check() error {
	switch {
	case r.Op == "":
		return Errorf(CodeBadRequest, "op is missing")
	case !r.Op.Valid():
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("unknown op %q: one of %s", r.Op, opNames())}
	case r.Op.Tercero() && r.Template != "":
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s is a user or session op and names no template: what it acts on goes in data", r.Op), Field: "template"}
	case r.Op != OpPing && r.Op != OpBatch && r.Op != OpLineage && !r.Op.Tercero() && r.Template == "":
		return Errorf(CodeBadRequest, "template is missing")
	case (r.Op == OpBatch || r.Op == OpLineage) && r.Template != "":
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s names no template: the template goes in each item", r.Op), Field: "template"}
	case r.Op == OpBatch && len(r.Batch) == 0:
		return &Error{Code: CodeBadRequest, Message: "batch is empty: give it an array of requests", Field: "batch"}
	case r.Op != OpBatch && r.Batch != nil:
		return &Error{Code: CodeBadRequest, Message: "batch applies to op batch only", Field: "batch"}
	case r.Op == OpLineage && r.Event == "":
		return &Error{Code: CodeBadRequest, Message: "lineage needs event: the event ID whose tree to read", Field: "event"}
	case r.Op != OpLineage && r.Event != "":
		return &Error{Code: CodeBadRequest, Message: "event applies to op lineage only; a request's own event ID is its message_id", Field: "event"}
	case len(r.Include) > 0 && r.Op != OpRead:
		return &Error{Code: CodeBadRequest, Message: "include applies to read only", Field: "include"}
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
	// Items answer a batch's requests, in their order.
	Items []Reply `json:"items,omitempty"`
	// Atomic is true on a batch reply whose writes ran in one transaction:
	// all of them applied, or none did.
	Atomic bool `json:"atomic,omitempty"`
	// Lineage is the tree an OpLineage request asked for.
	Lineage *Lineage `json:"lineage,omitempty"`
	// Identity answers login (with the token) and whoami.
	Identity *Identity `json:"identity,omitempty"`
	// Columns, when set, orders the keys of every row in the encoded
	// reply (the template's field order); it is not sent itself.
	Columns []string `json:"-"`
	// Trace is the traceparent the node returned in the reply's headers
	// (set by the client, never sent in a body).
	Trace string `json:"-"`
}

// Lineage is one event of a lineage tree, as its node recorded it.
type Lineage struct {
	Event    string `json:"event"`
	Parent   string `json:"parent,omitempty"`
	Op       Op     `json:"op"`
	Template string `json:"template,omitempty"`
	Node     string `json:"node,omitempty"`
	// Outcome is "ok" or the error code the event was answered with.
	Outcome    string    `json:"outcome"`
	Started    time.Time `json:"started"`
	DurationUS int64     `json:"duration_us"`
	// Trace is the W3C traceparent the request carried, if any.
	Trace    string     `json:"trace,omitempty"`
	Children []*Lineage `json:"children,omitempty"`
}

// ErrorReply builds the reply for a failed request.
func ErrorReply(event string, err *Error) *Reply {
	return &Reply{OK: false, Event: event, Error: err}
}

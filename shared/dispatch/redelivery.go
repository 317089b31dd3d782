package dispatch

import (
	"container/list"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// redeliveryTable is how many requests a broker remembers the deliveries
// of: about 100 bytes each, plus a failure message of at most
// maxCause bytes.
const (
	redeliveryTable = 4096
	maxCause        = 256
)

// tries counts the deliveries of requests that come back, for the
// delivery limit (see the package doc). A request is known by a hash of
// its message_id, correlation_id, reply_to, routing key and body, which a
// redelivery keeps. It is touched only by redeliveries and failures, so a
// request delivered once costs nothing. The table holds at most size
// requests; the one touched longest ago is forgotten first.
type tries struct {
	limit, size int
	seed        maphash.Seed

	mu    sync.Mutex
	order *list.List               // of *try, most recently touched first
	byKey map[uint64]*list.Element // into order
}

// try is what a node knows of one request's deliveries.
type try struct {
	key         uint64
	redelivered int       // redeliveries this node took
	first, last time.Time // first and last failure or redelivery seen here
	cause       string    // why this node last failed to finish it
}

// history is what the dead letter of a request over the limit carries.
type history struct {
	deliveries  int
	first, last time.Time
	cause       string
}

// newTries returns a table for limit, or nil (no limit) for limit <= 0; a
// nil table's methods do nothing.
func newTries(limit, size int) *tries {
	if limit <= 0 {
		return nil
	}
	return &tries{limit: limit, size: max(size, 1), seed: maphash.MakeSeed(), order: list.New(), byKey: map[uint64]*list.Element{}}
}

// arrive counts delivery d, received at now, and reports whether it is
// over the limit, with its history. Deliveries are at least one more than
// the redeliveries this node took, and x-delivery-count + 1 when the queue
// counts them itself (quorum).
func (t *tries) arrive(d *amqp.Delivery, now time.Time) (history, bool) {
	if t == nil {
		return history{}, false
	}
	counted := deliveryCount(d.Headers)
	if !d.Redelivered && counted <= 1 {
		return history{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.touch(t.key(d), now)
	if d.Redelivered {
		e.redelivered++
	}
	n := max(e.redelivered+1, counted)
	if n <= t.limit {
		return history{}, false
	}
	return history{deliveries: n, first: e.first, last: e.last, cause: e.cause}, true
}

// failed records why this node could not finish delivery d.
func (t *tries) failed(d *amqp.Delivery, cause string, now time.Time) {
	if t == nil {
		return
	}
	if len(cause) > maxCause {
		cause = strings.ToValidUTF8(cause[:maxCause], "")
	}
	t.mu.Lock()
	t.touch(t.key(d), now).cause = cause
	t.mu.Unlock()
}

// forget drops what the table knows of delivery d, once it is settled for
// good. Only a delivery that came back can be in the table.
func (t *tries) forget(d *amqp.Delivery) {
	if t == nil || (!d.Redelivered && deliveryCount(d.Headers) <= 1) {
		return
	}
	k := t.key(d)
	t.mu.Lock()
	if el, ok := t.byKey[k]; ok {
		t.order.Remove(el)
		delete(t.byKey, k)
	}
	t.mu.Unlock()
}

// touch returns the entry of key, made if missing, as the most recently
// touched; t.mu is held.
func (t *tries) touch(key uint64, now time.Time) *try {
	if el, ok := t.byKey[key]; ok {
		t.order.MoveToFront(el)
		e := el.Value.(*try)
		e.last = now
		return e
	}
	if t.order.Len() >= t.size {
		old := t.order.Back()
		t.order.Remove(old)
		delete(t.byKey, old.Value.(*try).key)
	}
	e := &try{key: key, first: now, last: now}
	t.byKey[key] = t.order.PushFront(e)
	return e
}

func (t *tries) key(d *amqp.Delivery) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	for _, s := range []string{d.MessageId, d.CorrelationId, d.ReplyTo, d.RoutingKey} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	h.Write(d.Body)
	return h.Sum64()
}

// deliveryCount returns x-delivery-count + 1, the deliveries of a
// request as a quorum queue counts them, or 0 when the header is missing
// or not a count.
func deliveryCount(h amqp.Table) int {
	v, ok := h["x-delivery-count"]
	if !ok {
		return 0
	}
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case int32:
		n = int64(x)
	case int16:
		n = int64(x)
	case int8:
		n = int64(x)
	case int:
		n = int64(x)
	case uint8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case uint32:
		n = int64(x)
	default:
		return 0
	}
	if n < 0 || n > 1<<30 {
		return 0
	}
	return int(n) + 1
}

// headers returns the dead letter's headers for h.
func (h history) headers() amqp.Table {
	t := amqp.Table{
		wire.HeaderDeliveries: int64(h.deliveries),
		wire.HeaderFirstSeen:  h.first.UTC().Format(time.RFC3339Nano),
		wire.HeaderLastSeen:   h.last.UTC().Format(time.RFC3339Nano),
	}
	if h.cause != "" {
		t[wire.HeaderLastFailure] = h.cause
	}
	return t
}

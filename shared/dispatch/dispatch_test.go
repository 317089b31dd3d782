package dispatch_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

// The middleware tests run without RabbitMQ: a Message made from a
// hand-built delivery, and a next handler that records its call.

var ids = lineage.NewGenerator()

// message starts handling d with a logger that discards.
func message(d *amqp.Delivery) *dispatch.Message {
	return dispatch.NewMessage(d, slog.New(slog.NewTextHandler(io.Discard, nil)), ids)
}

// next is the handler after the middleware under test: it records whether
// it ran and with what context, runs do if set, and answers with reply.
type next struct {
	reply  *wire.Reply
	do     func(ctx context.Context, m *dispatch.Message)
	called bool
	ctx    context.Context
}

func (n *next) Handle(ctx context.Context, m *dispatch.Message) *wire.Reply {
	n.called, n.ctx = true, ctx
	if n.do != nil {
		n.do(ctx, m)
	}
	return n.reply
}

func ok() *wire.Reply { return &wire.Reply{OK: true} }

func TestChainOrder(t *testing.T) {
	var order []string
	mark := func(name string) dispatch.Middleware {
		return func(h dispatch.Handler) dispatch.Handler {
			return dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) *wire.Reply {
				order = append(order, name)
				return h.Handle(ctx, m)
			})
		}
	}
	h := dispatch.HandlerFunc(func(context.Context, *dispatch.Message) *wire.Reply {
		order = append(order, "handler")
		return ok()
	})
	dispatch.Chain(h, mark("outer"), mark("inner")).Handle(context.Background(), message(&amqp.Delivery{}))
	if want := []string{"outer", "inner", "handler"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestNewMessage(t *testing.T) {
	valid, parent := ids.New(), ids.New()
	for _, tc := range []struct {
		name   string
		d      *amqp.Delivery
		keep   bool // the event ID is the delivery's message_id
		parent string
	}{
		{"valid message_id is the event ID", &amqp.Delivery{MessageId: valid}, true, ""},
		{"no message_id: a new event ID", &amqp.Delivery{}, false, ""},
		{"invalid message_id: a new event ID", &amqp.Delivery{MessageId: "not an id"}, false, ""},
		{"parent header", &amqp.Delivery{MessageId: valid, Headers: amqp.Table{wire.HeaderParent: parent}}, true, parent},
		{"parent header not a string", &amqp.Delivery{Headers: amqp.Table{wire.HeaderParent: 7}}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := message(tc.d)
			if !lineage.Valid(m.Event) || (m.Event == tc.d.MessageId) != tc.keep {
				t.Errorf("event %q for message_id %q, keep %v", m.Event, tc.d.MessageId, tc.keep)
			}
			if m.Parent != tc.parent {
				t.Errorf("parent %q, want %q", m.Parent, tc.parent)
			}
			if m.Delivery != tc.d || m.Request == nil || m.Received.IsZero() {
				t.Errorf("message %+v", m)
			}
		})
	}
}

func TestMessageLogCarriesTheEvent(t *testing.T) {
	var buf bytes.Buffer
	m := dispatch.NewMessage(&amqp.Delivery{}, slog.New(slog.NewTextHandler(&buf, nil)), ids)
	m.Log().Info("hello")
	if !bytes.Contains(buf.Bytes(), []byte("event="+m.Event)) {
		t.Fatalf("log line %q lacks event=%s", buf.String(), m.Event)
	}
}

// Writes decides which replies are confirmed: by the op Decode read.
func TestMessageWrites(t *testing.T) {
	for _, tc := range []struct {
		body   string
		writes bool
	}{
		{`{"template":"t","op":"create","data":{}}`, true},
		{`{"template":"t","op":"update","data":{}}`, true},
		{`{"template":"t","op":"delete"}`, true},
		{`{"template":"t","op":"read"}`, false},
		{`{"template":"t","op":"count"}`, false},
		{`{"op":"ping"}`, false},
		{`not json`, false},
		{`{"template":"t","op":"create","sql":"x"}`, false}, // unreadable: no op
		{`{"op":"create"}`, true},                           // read but rejected: keeps its op
	} {
		m := message(&amqp.Delivery{Body: []byte(tc.body)})
		if m.Writes() {
			t.Errorf("%s: Writes before Decode", tc.body)
		}
		dispatch.Decode(0)(&next{reply: ok()}).Handle(context.Background(), m)
		if m.Writes() != tc.writes {
			t.Errorf("%s: Writes = %v, want %v", tc.body, m.Writes(), tc.writes)
		}
	}
}

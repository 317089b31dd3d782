package dispatch

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// panicky is a value whose JSON encoding panics.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("marshal") }

// TestAnswer: what a broker publishes for a delivery, decided without
// RabbitMQ.
func TestAnswer(t *testing.T) {
	direct := wire.DirectReplyTo + ".g1h2AA1yZXBseUA5MjQ4ODg0AABsaAAAAABrCUso.qz4QVvlY/UTvtZEfeLsG0Q=="
	okBody := `{"template":"t","op":"read"}`
	for _, tc := range []struct {
		name    string
		d       amqp.Delivery
		reply   *wire.Reply // the handler's
		ran     bool        // the handler ran
		code    wire.Code   // of the reply published, "" for ok, "-" for none
		dead    string      // the dead letter's x-beds-error, "" for none
		maxSize int
	}{
		{"ok reply", amqp.Delivery{ReplyTo: direct, Body: []byte(okBody)}, &wire.Reply{OK: true}, true, "", "", 0},
		{"ok, nobody waits", amqp.Delivery{Body: []byte(okBody)}, &wire.Reply{OK: true}, true, "-", "", 0},
		{"failure, nobody waits", amqp.Delivery{Body: []byte(okBody)},
			wire.ErrorReply("", wire.Errorf(wire.CodeNotFound, "x")), true, "-", string(wire.CodeNotFound), 0},
		{"failure without an error, nobody waits", amqp.Delivery{Body: []byte(okBody)}, &wire.Reply{}, true, "-", string(wire.CodeInternal), 0},
		{"no reply, nobody waits", amqp.Delivery{Body: []byte(okBody)}, nil, true, "-", string(wire.CodeInternal), 0},
		{"failure without an error", amqp.Delivery{ReplyTo: direct, Body: []byte(okBody)}, &wire.Reply{}, true, wire.CodeInternal, "", 0},
		{"a value JSON cannot hold", amqp.Delivery{ReplyTo: direct, Body: []byte(okBody)},
			&wire.Reply{OK: true, Rows: []wire.Row{{"doc": map[string]any{"x": math.Inf(1)}}}}, true, wire.CodeInternal, "", 0},
		{"a value whose encoding panics", amqp.Delivery{ReplyTo: direct, Body: []byte(okBody)},
			&wire.Reply{OK: true, Rows: []wire.Row{{"doc": panicky{}}}}, true, wire.CodeInternal, "", 0},
		{"a write's reply that cannot be encoded", amqp.Delivery{ReplyTo: direct, Body: []byte(`{"template":"t","op":"delete"}`)},
			&wire.Reply{OK: true, Key: map[string]any{"x": math.NaN()}}, true, wire.CodeInternal, "", 0},
		{"reply over the limit", amqp.Delivery{ReplyTo: direct, Body: []byte(okBody)},
			&wire.Reply{OK: true, Rows: []wire.Row{{"blob": strings.Repeat("x", 1000)}}}, true, wire.CodeTooLarge, "", 500},
		{"reply at the limit", amqp.Delivery{ReplyTo: direct, Body: []byte(okBody)},
			&wire.Reply{OK: true, Rows: []wire.Row{{"b": "x"}}}, true, "", "", len(`{"ok":true,"event":"01ARZ3NDEKTSV4RRFFQ69G5FAV","node":"n","count":0,"affected":0,"rows":[{"b":"x"}]}`)},
		{"refused reply_to", amqp.Delivery{ReplyTo: wire.EventsQueue, Body: []byte(okBody)}, &wire.Reply{OK: true}, false, "-", string(wire.CodeBadRequest), 0},
		{"over the delivery limit (quorum count)", amqp.Delivery{ReplyTo: direct, Redelivered: true, Body: []byte(okBody),
			Headers: amqp.Table{"x-delivery-count": int64(3)}}, &wire.Reply{OK: true}, false, "-", wire.DeadDeliveryLimit, 0},
		{"at the delivery limit (quorum count)", amqp.Delivery{ReplyTo: direct, Redelivered: true, Body: []byte(okBody),
			Headers: amqp.Table{"x-delivery-count": int64(2)}}, &wire.Reply{OK: true}, true, "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran := false
			b := NewBroker(Config{Node: "n", MaxReply: tc.maxSize, DeliveryLimit: 3}, HandlerFunc(func(context.Context, *Message) *wire.Reply {
				ran = true
				return tc.reply
			}), slog.New(slog.NewTextHandler(io.Discard, nil)))
			d := tc.d
			m := NewMessage(&d, b.log, b.ids)
			m.Event = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
			a := b.answer(context.Background(), m)
			if ran != tc.ran {
				t.Errorf("handler ran: %v, want %v", ran, tc.ran)
			}
			switch {
			case tc.dead == "" && a.dead != nil:
				t.Errorf("dead-lettered as %s", a.dead.Code)
			case tc.dead != "" && (a.dead == nil || string(a.dead.Code) != tc.dead):
				t.Errorf("dead letter %+v, want %s", a.dead, tc.dead)
			}
			if tc.code == "-" {
				if a.body != nil {
					t.Fatalf("published %s, want nothing", a.body)
				}
				return
			}
			var r wire.Reply
			if err := json.Unmarshal(a.body, &r); err != nil {
				t.Fatalf("reply %s: %v", a.body, err)
			}
			var code wire.Code
			if r.Error != nil {
				code = r.Error.Code
			}
			if code != tc.code || r.OK != (code == "") || r.Event != m.Event || r.Node != "n" {
				t.Fatalf("reply with code %q (%d bytes), want code %q", code, len(a.body), tc.code)
			}
			if tc.maxSize > 0 && len(a.body) > tc.maxSize {
				t.Errorf("reply of %d bytes over the limit of %d", len(a.body), tc.maxSize)
			}
		})
	}
}

// panicLog is a log handler that panics.
type panicLog struct{}

func (panicLog) Enabled(context.Context, slog.Level) bool  { return true }
func (panicLog) Handle(context.Context, slog.Record) error { panic("log") }
func (h panicLog) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panicLog) WithGroup(string) slog.Handler           { return h }

type panicObserver struct{}

func (panicObserver) Observe(string, wire.Op, wire.Code, time.Duration) { panic("observe") }

// Recover is outermost: a panic in the middleware (logging, the
// Observer), not only in the handler, is answered internal and never
// reaches the worker; and the inner Recover still lets Log and Metrics
// see a handler's panic as internal.
func TestRecoverIsOutermost(t *testing.T) {
	okHandler := HandlerFunc(func(context.Context, *Message) *wire.Reply { return &wire.Reply{OK: true} })
	panicking := HandlerFunc(func(context.Context, *Message) *wire.Reply { panic("handler") })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		h    Handler
		obs  Observer
		log  *slog.Logger
	}{
		{"panicking Observer", okHandler, panicObserver{}, quiet},
		{"panicking logger", okHandler, nil, slog.New(panicLog{})},
		{"panicking handler, logger and Observer", panicking, panicObserver{}, slog.New(panicLog{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBroker(Config{Observer: tc.obs}, tc.h, tc.log)
			for _, to := range []string{"", wire.DirectReplyTo + ".g1h2AA1yZXBseUA5MjQ4ODg0AABsaAAAAABrCUso.qz4QVvlY/UTvtZEfeLsG0Q=="} {
				m := NewMessage(&amqp.Delivery{ReplyTo: to, Body: []byte(`{"template":"t","op":"read"}`)}, b.log, b.ids)
				if r := b.Handle(context.Background(), m); r == nil || r.OK || r.Error.Code != wire.CodeInternal {
					t.Fatalf("reply %+v, want internal", r)
				}
				// And serve's own step, with its logging, does not panic either.
				if a := b.answer(context.Background(), m); a.dead == nil && a.body == nil {
					t.Fatal("no answer")
				}
			}
		})
	}
	t.Run("a handler's panic is observed", func(t *testing.T) {
		var obs codes
		b := NewBroker(Config{Observer: &obs}, panicking, quiet)
		b.Handle(context.Background(), NewMessage(&amqp.Delivery{Body: []byte(`{"template":"t","op":"read"}`)}, b.log, b.ids))
		if !slices.Equal(obs, codes{wire.CodeInternal}) {
			t.Fatalf("observed %v, want internal", obs)
		}
	})
}

func TestReplyToAllowed(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
		ok           bool
	}{
		{wire.DirectReplyTo, "", true},
		{wire.DirectReplyTo + ".g1h2AA1yZXBseUA5MjQ4ODg0AABsaAAAAABrCUso.qz4QVvlY/UTvtZEfeLsG0Q==", "", true},
		{wire.DirectReplyTo + "x", "", false},
		{"amq.rabbitmq.reply", "", false},
		{wire.EventsQueue, "", false},
		{"foreign", "", false},
		{"app.replies.1", "", false},
		{"app.replies.1", "app.replies.", true},
		{"app.other", "app.replies.", false},
		// A direct reply-to name RabbitMQ cannot decode is refused, prefix
		// or not: RabbitMQ 3.10 would close the connection on its reply.
		{wire.DirectReplyTo + ".a.b", "app.replies.", false},
		{wire.EventsQueue, "beds.", false}, // a prefix never admits the contract's queues
		{wire.DeadQueue, "beds.", false},
	} {
		if got := ReplyToAllowed(tc.name, tc.prefix); got != tc.ok {
			t.Errorf("ReplyToAllowed(%q, %q) = %v, want %v", tc.name, tc.prefix, got, tc.ok)
		}
	}
}

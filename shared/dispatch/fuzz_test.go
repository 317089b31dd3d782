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

// FuzzChain runs what a broker does for a delivery before publishing (the
// whole standard chain, a handler that does no I/O, and the choice and
// encoding of the answer) over arbitrary delivery properties. Whatever
// arrives: nothing panics, a reply is valid JSON with a code of the
// contract (or ok) and fits MaxReply, nothing is published to a refused
// reply_to, and the handler's deadline is never past MaxTimeout.
//
//	go test -run '^$' -fuzz FuzzChain -fuzztime 30s ./shared/dispatch
func FuzzChain(f *testing.F) {
	direct := wire.DirectReplyTo + ".g1h2AA1yZXBseUA5MjQ4ODg0AABsaAAAAABrCUso.qz4QVvlY/UTvtZEfeLsG0Q=="
	for _, s := range []struct {
		expiration, replyTo, contentType, contentEncoding, body, messageID string
		redelivered                                                        bool
		header, value                                                      string
		count                                                              int64
	}{
		{"", direct, wire.ContentType, "", `{"template":"t","op":"read","filter":{"id":1}}`, "", false, "", "", -1},
		{"1500", direct, "", "identity", `{"template":"t","op":"create","data":{"a":1}}`, "01ARZ3NDEKTSV4RRFFQ69G5FAV", false, wire.HeaderParent, "01ARZ3NDEKTSV4RRFFQ69G5FAV", -1},
		{"99999999999", "beds.events", wire.ContentType, "", `{"template":"t","op":"delete"}`, "x", true, "", "", 7},
		{"0", "", "text/plain", "gzip", `not json`, "", false, "", "", -1},
		{"", "", "", "", `{"template":"panic","op":"read"}`, "", true, "x-delivery-count", "2", 1},
		{"", direct, "", "", `{"template":"nan","op":"update","data":{}}`, "", false, "", "", -1},
		{"", direct, "", "", `{"template":"big","op":"read"}`, "", false, "", "", -1},
		{"", "", "", "", `{"template":"noerr","op":"read"}`, "", false, "", "", -1},
		{"", "app.replies", "", "", `{"template":"nil","op":"count"}`, "", false, "", "", -1},
		{"-5", direct, "", "", `{"op":"ping"}`, "", false, "", "", -1},
		{"", wire.DirectReplyTo + ".a.b", "", "", `{"template":"t","op":"read"}`, "", false, "", "", -1},
		{"", wire.DirectReplyTo + ".g1h2AA5yZXBseUA4MjEwOTMwMQAAAGQAAAAAAAAAAQ==.8T4HfZRYHX50/TuEjRmRUw==", "", "", `{"template":"t","op":"create","data":{}}`, "", false, "", "", -1},
	} {
		f.Add(s.expiration, s.replyTo, s.contentType, s.contentEncoding, []byte(s.body), s.messageID, s.redelivered, s.header, s.value, s.count)
	}
	const (
		timeout    = 5 * time.Second
		maxTimeout = 2 * time.Second
		maxReply   = 2048
		prefix     = "app."
	)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, expiration, replyTo, contentType, contentEncoding string, body []byte, messageID string,
		redelivered bool, header, value string, count int64) {
		var ran bool
		var deadline time.Time
		h := HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			ran = true
			deadline, _ = ctx.Deadline()
			r := m.Request
			switch r.Template {
			case "panic":
				panic("fuzz")
			case "nil":
				return nil
			case "noerr":
				return &wire.Reply{}
			case "nan":
				return &wire.Reply{OK: true, Rows: []wire.Row{{"f": math.NaN(), "doc": map[string]any{"x": math.Inf(-1)}}}}
			case "big":
				return &wire.Reply{OK: true, Rows: []wire.Row{{"blob": strings.Repeat("x", 2*maxReply)}}}
			case "fail":
				return wire.ErrorReply(m.Event, wire.FieldError(wire.CodeBadField, r.Template, "no field %q", r.Fields))
			}
			// Echo what the caller sent: strings, raw JSON, numbers.
			return &wire.Reply{OK: true, Count: int64(r.Limit), Rows: []wire.Row{{
				"template": r.Template, "op": string(r.Op), "filter": r.Filter, "data": r.Data,
				"fields": r.Fields, "offset": r.Offset, "parent": m.Parent,
			}}}
		})
		var obs codes
		b := NewBroker(Config{Node: "fuzz", MaxBody: 4096, MaxReply: maxReply, Timeout: timeout, MaxTimeout: maxTimeout,
			ReplyPrefix: prefix, DeliveryLimit: 3, Observer: &obs}, h, quiet)
		d := &amqp.Delivery{Expiration: expiration, ReplyTo: replyTo, ContentType: contentType, ContentEncoding: contentEncoding,
			Body: body, MessageId: messageID, Redelivered: redelivered, Headers: amqp.Table{}}
		if header != "" {
			d.Headers[header] = value
		}
		if count >= 0 {
			d.Headers["x-delivery-count"] = count
		}
		m := NewMessage(d, b.log, b.ids)
		a := b.answer(context.Background(), m)
		defer func() {
			if a.buf != nil {
				b.buffers.Put(a.buf)
			}
		}()

		if ran && deadline.Sub(m.Received) > maxTimeout {
			t.Fatalf("handler deadline %v after arrival, more than MaxTimeout %v", deadline.Sub(m.Received), maxTimeout)
		}
		refused := replyTo != "" && !ReplyToAllowed(replyTo, prefix)
		if refused && (a.body != nil || ran || a.dead == nil || (a.dead.Code != wire.CodeBadRequest && a.dead.Code != wire.DeadDeliveryLimit)) {
			t.Fatalf("refused reply_to %q: ran %v, published %q, dead %+v", replyTo, ran, a.body, a.dead)
		}
		if a.body != nil && a.dead != nil {
			t.Fatal("both a reply and a dead letter")
		}
		if a.dead != nil && !slices.Contains(wire.Codes, a.dead.Code) && a.dead.Code != wire.DeadDeliveryLimit {
			t.Fatalf("dead letter code %q", a.dead.Code)
		}
		if replyTo == "" || refused || a.dead != nil {
			if a.body != nil {
				t.Fatalf("published %s with reply_to %q", a.body, replyTo)
			}
			return
		}
		if a.body == nil {
			t.Fatalf("no reply for reply_to %q", replyTo)
		}
		if len(a.body) > maxReply {
			t.Fatalf("reply of %d bytes, more than MaxReply %d", len(a.body), maxReply)
		}
		var r wire.Reply
		if err := json.Unmarshal(a.body, &r); err != nil {
			t.Fatalf("reply %q is not JSON: %v", a.body, err)
		}
		if r.Event != m.Event || r.Node != "fuzz" {
			t.Fatalf("reply %s: event or node wrong", a.body)
		}
		if !r.OK && (r.Error == nil || !slices.Contains(wire.Codes, r.Error.Code)) {
			t.Fatalf("failed reply %s without a code of the contract", a.body)
		}
		if r.OK && r.Error != nil {
			t.Fatalf("ok reply %s with an error", a.body)
		}
	})
}

package dispatch

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

type codes []wire.Code

func (c *codes) Observe(_ string, _ wire.Op, code wire.Code, _ time.Duration) { *c = append(*c, code) }

// A broker never runs its handler outside the standard chain: NewBroker
// builds it from the Config, and no RabbitMQ is needed to see it work.
func TestNewBrokerRunsTheChain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		observer bool
		maxBody  int
		timeout  time.Duration
		code     wire.Code     // of the reply, "" for ok
		deadline time.Duration // after Received, when the handler ran
	}{
		{"ok, default timeout", `{"template":"t","op":"read"}`, true, 0, 0, "", 30 * time.Second},
		{"ok, configured timeout", `{"template":"t","op":"read"}`, false, 0, time.Second, "", time.Second},
		{"decoded before the handler", `{"template":"t"`, true, 0, 0, wire.CodeBadRequest, 0},
		{"body limit", `{"template":"t","op":"read"}`, true, 10, 0, wire.CodeTooLarge, 0},
		{"panic recovered", `{"template":"boom","op":"read"}`, true, 0, 0, wire.CodeInternal, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var obs codes
			cfg := Config{Name: "dispatcher", MaxBody: tc.maxBody, Timeout: tc.timeout}
			if tc.observer {
				cfg.Observer = &obs
			}
			var ran bool
			var deadline time.Time
			h := HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
				ran = true
				deadline, _ = ctx.Deadline()
				if m.Request.Template == "boom" {
					panic("boom")
				}
				return &wire.Reply{OK: true}
			})
			b := NewBroker(cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
			m := NewMessage(&amqp.Delivery{Body: []byte(tc.body)}, b.log, b.ids)
			reply := b.handler.Handle(context.Background(), m)
			var code wire.Code
			if reply.Error != nil {
				code = reply.Error.Code
			}
			if code != tc.code || reply.OK != (tc.code == "") {
				t.Fatalf("reply %+v, want code %q", reply, tc.code)
			}
			if ran != (tc.deadline != 0) {
				t.Fatalf("handler ran: %v", ran)
			}
			if ran && !deadline.Equal(m.Received.Add(tc.deadline)) {
				t.Errorf("deadline %v after arrival, want %v", deadline.Sub(m.Received), tc.deadline)
			}
			want := codes(nil)
			if tc.observer {
				want = codes{tc.code}
			}
			if !slices.Equal(obs, want) {
				t.Errorf("observed %v, want %v", obs, want)
			}
		})
	}
}

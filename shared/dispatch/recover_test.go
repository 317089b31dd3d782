package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/wire"
)

func TestRecover(t *testing.T) {
	answer := ok()
	for _, tc := range []struct {
		name   string
		handle func() // nil: the handler returns answer
		logs   string // in the log line, besides the message and event ID
	}{
		{"no panic: the handler's reply", nil, ""},
		{"panic with a string", func() { panic("boom") }, "panic=boom"},
		{"panic with an error", func() { panic(errors.New("bad state")) }, `panic="bad state"`},
		{"panic(nil)", func() { panic(nil) }, "panic="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			m := dispatch.NewMessage(&amqp.Delivery{}, slog.New(slog.NewTextHandler(&buf, nil)), ids)
			n := &next{reply: answer}
			if tc.handle != nil {
				n.do = func(context.Context, *dispatch.Message) { tc.handle() }
			}
			reply := dispatch.Recover()(n).Handle(context.Background(), m)
			if !n.called {
				t.Fatal("handler not called")
			}
			if tc.handle == nil {
				if reply != answer || buf.Len() != 0 {
					t.Fatalf("reply %+v, log %q: want the handler's reply and no log", reply, buf.String())
				}
				return
			}
			if reply == nil || reply.OK || reply.Error == nil || reply.Error.Code != wire.CodeInternal || reply.Event != m.Event {
				t.Fatalf("reply %+v, want internal for event %s", reply, m.Event)
			}
			line := buf.String()
			for _, want := range []string{"handler panicked", "event=" + m.Event, tc.logs, "stack="} {
				if !strings.Contains(line, want) {
					t.Errorf("log %q lacks %q", line, want)
				}
			}
		})
	}
}

package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/wire"
)

func TestLog(t *testing.T) {
	const body = `{"template":"users","op":"read"}`
	for _, tc := range []struct {
		name  string
		level slog.Level // the node's log level
		reply *wire.Reply
		want  string // the line's level, "" for no line
		code  string
	}{
		{"ok at debug", slog.LevelDebug, ok(), "DEBUG", ""},
		{"request error at debug", slog.LevelDebug, wire.ErrorReply("", wire.Errorf(wire.CodeBadField, "x")), "DEBUG", "bad_field"},
		{"data error at debug", slog.LevelDebug, wire.ErrorReply("", wire.Errorf(wire.CodeNotFound, "x")), "DEBUG", "not_found"},
		{"system error at debug", slog.LevelDebug, wire.ErrorReply("", wire.Errorf(wire.CodeUnavailable, "x")), "WARN", "unavailable"},
		{"nil reply at debug", slog.LevelDebug, nil, "DEBUG", ""},
		{"ok at info: no line", slog.LevelInfo, ok(), "", ""},
		{"request error at info: no line", slog.LevelInfo, wire.ErrorReply("", wire.Errorf(wire.CodeBadRequest, "x")), "", ""},
		{"system error at info", slog.LevelInfo, wire.ErrorReply("", wire.Errorf(wire.CodeInternal, "x")), "WARN", "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
			m := dispatch.NewMessage(&amqp.Delivery{Body: []byte(body), Redelivered: true}, log, ids)
			n := &next{reply: tc.reply}
			// Decode inside Log, as in a broker: the line names what it read.
			reply := dispatch.Chain(n, dispatch.Log(), dispatch.Decode(0)).Handle(context.Background(), m)
			if !n.called || reply != tc.reply {
				t.Fatalf("called %v, reply %+v: want the handler's reply", n.called, reply)
			}
			if tc.want == "" {
				if buf.Len() != 0 {
					t.Fatalf("logged %q, want nothing", buf.String())
				}
				return
			}
			var line struct {
				Level, Msg, Event, Template, Op, Code string
				Took                                  int64
				Redelivered                           bool
			}
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("one JSON line: %v: %q", err, buf.String())
			}
			if line.Level != tc.want || line.Msg != "request" || line.Event != m.Event || line.Template != "users" ||
				line.Op != "read" || line.Code != tc.code || line.Took <= 0 || !line.Redelivered {
				t.Fatalf("line %+v, want level %s, event %s, users/read, code %q", line, tc.want, m.Event, tc.code)
			}
		})
	}
}

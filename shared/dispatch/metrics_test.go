package dispatch_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/wire"
)

type observation struct {
	template string
	op       wire.Op
	code     wire.Code
	took     time.Duration
}

type observations []observation

func (o *observations) Observe(template string, op wire.Op, code wire.Code, took time.Duration) {
	*o = append(*o, observation{template, op, code, took})
}

func TestMetrics(t *testing.T) {
	const pause = 5 * time.Millisecond
	for _, tc := range []struct {
		name  string
		body  string
		reply *wire.Reply
		want  observation // took: at least
	}{
		{"ok", `{"template":"users","op":"create","data":{}}`, ok(), observation{"users", wire.OpCreate, "", pause}},
		{"handler error", `{"template":"users","op":"read"}`, wire.ErrorReply("", wire.Errorf(wire.CodeConflict, "x")),
			observation{"users", wire.OpRead, wire.CodeConflict, pause}},
		{"nil reply", `{"template":"users","op":"count"}`, nil, observation{"users", wire.OpCount, "", pause}},
		{"body Decode rejects: no template, no op", `{`, ok(), observation{"", "", wire.CodeBadRequest, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o observations
			n := &next{reply: tc.reply, do: func(context.Context, *dispatch.Message) { time.Sleep(pause) }}
			m := message(&amqp.Delivery{Body: []byte(tc.body)})
			// Decode inside Metrics, as in a broker.
			dispatch.Chain(n, dispatch.Metrics(&o), dispatch.Decode(0)).Handle(context.Background(), m)
			if len(o) != 1 {
				t.Fatalf("%d observations, want 1", len(o))
			}
			got := o[0]
			if got.template != tc.want.template || got.op != tc.want.op || got.code != tc.want.code || got.took < tc.want.took {
				t.Fatalf("observed %+v, want %+v (took at least)", got, tc.want)
			}
		})
	}
}

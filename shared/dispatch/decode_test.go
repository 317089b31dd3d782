package dispatch_test

import (
	"context"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/wire"
)

func TestDecode(t *testing.T) {
	const read = `{"template":"users","op":"read"}`
	big := `{"template":"users","op":"read","filter":{"name":"` + strings.Repeat("x", 100) + `"}}`
	for _, tc := range []struct {
		name     string
		d        amqp.Delivery
		maxBody  int
		code     wire.Code // "": decoded and handed on
		template string    // of the decoded request
	}{
		{"plain", amqp.Delivery{Body: []byte(read)}, 0, "", "users"},
		{"json content type", amqp.Delivery{Body: []byte(read), ContentType: wire.ContentType}, 0, "", "users"},
		{"identity encoding", amqp.Delivery{Body: []byte(read), ContentEncoding: "identity"}, 0, "", "users"},
		{"at the limit", amqp.Delivery{Body: []byte(read)}, len(read), "", "users"},
		{"no limit", amqp.Delivery{Body: []byte(big)}, 0, "", "users"},
		{"over the limit", amqp.Delivery{Body: []byte(big)}, len(big) - 1, wire.CodeTooLarge, ""},
		{"other content type", amqp.Delivery{Body: []byte(read), ContentType: "text/plain"}, 0, wire.CodeBadRequest, ""},
		{"compressed", amqp.Delivery{Body: []byte(read), ContentEncoding: "gzip"}, 0, wire.CodeBadRequest, ""},
		{"not json", amqp.Delivery{Body: []byte("hello")}, 0, wire.CodeBadRequest, ""},
		{"empty", amqp.Delivery{}, 0, wire.CodeBadRequest, ""},
		{"unknown op", amqp.Delivery{Body: []byte(`{"template":"users","op":"drop"}`)}, 0, wire.CodeBadRequest, ""},
		{"no template", amqp.Delivery{Body: []byte(`{"op":"read"}`)}, 0, wire.CodeBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := message(&tc.d)
			n := &next{reply: ok()}
			reply := dispatch.Decode(tc.maxBody)(n).Handle(context.Background(), m)
			if tc.code == "" {
				if !n.called || !reply.OK || m.Request.Template != tc.template || m.Request.Op != wire.OpRead {
					t.Fatalf("called %v, reply %+v, request %+v", n.called, reply, m.Request)
				}
				return
			}
			if n.called {
				t.Fatal("the next handler ran for a request Decode rejected")
			}
			if reply.OK || reply.Error.Code != tc.code || reply.Event != m.Event {
				t.Fatalf("reply %+v, want %s for event %s", reply, tc.code, m.Event)
			}
		})
	}
}

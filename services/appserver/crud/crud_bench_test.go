package crud_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/services/appserver/crud"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// rowStore answers every query with one users row as the MariaDB adapter
// builds it, without a database.
type rowStore struct{ created time.Time }

func (s rowStore) Exec(_ context.Context, q *store.Query) (*store.Result, error) {
	row := make(wire.Row, len(q.Fields))
	for _, f := range q.Fields {
		switch f.Name {
		case "id":
			row["id"] = int64(12345)
		case "email":
			row["email"] = "ann@example.com"
		case "name":
			row["name"] = "Ann Example"
		case "age":
			row["age"] = int64(34)
		case "score":
			row["score"] = 2.5
		case "active":
			row["active"] = true
		case "created":
			row["created"] = s.created
		default:
			row[f.Name] = nil
		}
	}
	return &store.Result{Rows: []wire.Row{row}, Count: 1}, nil
}
func (rowStore) Ping(context.Context) error { return nil }
func (rowStore) Close() error               { return nil }

// BenchmarkDispatchPointRead is what a node does for one point read besides
// the network and the database: what dispatch.Broker.serve does before
// publishing (the Message, the event's logger), the appserver's middleware
// (log, metrics, deadline, decode, recover), crud.Handler (template lookup,
// store.Build), a store answering one row, and the reply's encoding.
//
//	go test -run '^$' -bench DispatchPointRead -benchmem ./shared/crud
func BenchmarkDispatchPointRead(b *testing.B) {
	file := filepath.Join(testenv.Root(b), "templates", "users_rec.toml")
	src, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	tpl, err := template.Parse(file, src, map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := template.NewRegistry(tpl)
	if err != nil {
		b.Fatal(err)
	}
	h, err := crud.New(crud.Config{Templates: reg, Stores: map[string]store.Store{"mariadb": rowStore{created: time.Now().UTC()}}, Limits: store.DefaultLimits})
	if err != nil {
		b.Fatal(err)
	}
	// The node logs at info: the per-request debug line is skipped.
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The broker's own chain, run without RabbitMQ.
	handler := dispatch.NewBroker(dispatch.Config{
		Name: "dispatcher", MaxBody: 1 << 20, Timeout: 30 * time.Second, Observer: ipl.NewMetrics(prometheus.NewRegistry(), reg),
	}, h, log)
	ids := lineage.NewGenerator()
	event := ids.New()
	// reply_to as RabbitMQ 3.10 delivers a direct reply-to request: the
	// broker decodes its pid to decide where the reply may go.
	const replyTo = wire.DirectReplyTo + ".g1h2AA1yZXBseUA5MjQ4ODg0AAAwQwAAAAJrCUso.8T4HfZRYHX50/TuEjRmRUw=="
	d := &amqp.Delivery{
		Body: []byte(`{"template":"users","op":"read","filter":{"id":12345}}`), ContentType: wire.ContentType,
		MessageId: event, CorrelationId: event, ReplyTo: replyTo, Expiration: "30000", RoutingKey: wire.RouteRead,
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m := dispatch.NewMessage(d, log, ids)
		reply := handler.Handle(ctx, m)
		if !reply.OK {
			b.Fatal(reply.Error)
		}
		reply.Event, reply.Node = m.Event, "appserver@bench"
		if _, err := reply.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

package mongo

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

// BenchmarkPointRead is the in-process point read on MongoDB, without
// network: decode the body, validate and build the query (store.Build),
// build the filter, projection and find options as read does, encode the
// filter to BSON as the driver will, decode one stored document into a
// reply row, and encode the reply into a reused buffer as the dispatcher
// does. Sub-benchmarks split the steps.
//
//	go test -run '^$' -bench PointRead -benchmem ./shared/store/mongo
func BenchmarkPointRead(b *testing.B) {
	tpl := testTemplate(b, "people")
	body := []byte(`{"template":"people","op":"read","filter":{"id":"01JD8X3Q7P2M4N5R6S7T8V9W0X"}}`)
	const event = "01JD8X3Q7P2M4N5R6S7T8V9W0Y"
	stored, err := bson.Marshal(bson.D{
		{Key: "_id", Value: "01JD8X3Q7P2M4N5R6S7T8V9W0X"}, {Key: "ppl_name", Value: "Ann Example"},
		{Key: "ppl_age", Value: int64(34)}, {Key: "ppl_score", Value: 2.5}, {Key: "ppl_active", Value: true},
		{Key: "ppl_born", Value: bson.NewDateTimeFromTime(time.Date(1990, 1, 2, 3, 4, 5, 0, time.UTC))},
		{Key: "nickname", Value: "annie"},
	})
	if err != nil {
		b.Fatal(err)
	}
	doc := bson.Raw(stored)

	query := func(b *testing.B, q *store.Query) {
		filter, err := filterOf(q)
		if err != nil {
			b.Fatal(err)
		}
		opts := options.Find().SetProjection(projectionDoc(q.Fields)).SetLimit(int64(q.Limit)).SetBatchSize(int32(min(q.Limit, 10000)))
		_ = opts
		if _, err := bson.Marshal(filter); err != nil {
			b.Fatal(err)
		}
	}
	decode := func(b *testing.B, q *store.Query) []wire.Row {
		row, err := decodeRow(doc, q.Fields)
		if err != nil {
			b.Fatal(err)
		}
		return append(make([]wire.Row, 0, 1), row)
	}

	buf := make([]byte, 0, 1024) // the dispatcher's pooled reply buffer
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req, err := wire.DecodeRequest(body)
			if err != nil {
				b.Fatal(err)
			}
			q, err := store.Build(tpl, event, req, store.DefaultLimits)
			if err != nil {
				b.Fatal(err)
			}
			query(b, q)
			rows := decode(b, q)
			reply := wire.Reply{OK: true, Event: event, Node: "appserver@bench", Rows: rows, Count: 1}
			if buf, err = reply.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	req, _ := wire.DecodeRequest(body)
	q, _ := store.Build(tpl, event, req, store.DefaultLimits)
	b.Run("filter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			query(b, q)
		}
	})
	b.Run("row", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decode(b, q)
		}
	})
}

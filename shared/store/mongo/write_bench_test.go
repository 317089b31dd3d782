package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// BenchmarkCreateServer measures what applying a create once costs the
// MongoDB-wire server: the adapter's create (the claim in beds_events, the
// insert stamped with the event, the claim settled as done: three round
// trips) against a bare InsertOne of the same document, the create a
// server without the guarantee would make, in the same run, 32 goroutines
// each. Besides ns/op it reports server-µs/op, the CPU the server process
// (ferretdb, else mongod) used per create, when it runs on this machine:
//
//	BEDS_TEST_MONGO_URI=mongodb://HOST/ go test -run '^$' -bench BenchmarkCreateServer -benchtime 5s ./shared/store/mongo
//
// Run it against a MongoDB. On the FerretDB the tests use, every lookup by
// _id scans the collection (deploy/ferretdb), so the claim and its settling
// cost more with each event recorded and the figures describe FerretDB.
func BenchmarkCreateServer(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a MongoDB-wire server")
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s, err := Open(b.Context(), Config{URI: withDB(testURI(), "beds_bench_"+hex.EncodeToString(id[:]))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	defer func() { _ = s.db.Drop(context.Background()) }()
	tpl := testTemplate(b, "people")
	coll := s.coll(tpl)
	pid := testenv.PIDOf("ferretdb", "mongod")
	var n atomic.Int64
	key := func() string { return fmt.Sprintf("k%d-%s", n.Add(1), hex.EncodeToString(id[:])) }

	for _, tc := range []struct {
		name   string
		create func(ctx context.Context) error
	}{
		{"bare InsertOne", func(ctx context.Context) error {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: key()}, {Key: "ppl_name", Value: "Ann"}, {Key: "ppl_age", Value: int64(34)}})
			return err
		}},
		{"adapter, exactly once", func(ctx context.Context) error {
			k := key()
			q, err := store.Build(tpl, "ev-"+k, &wire.Request{Template: "people", Op: wire.OpCreate,
				Data: []byte(`{"id":"` + k + `","name":"Ann","age":34}`)}, store.DefaultLimits)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err = s.Exec(ctx, q)
			return err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) { testenv.BenchParallel(b, pid, "server-µs/op", tc.create) })
	}
}

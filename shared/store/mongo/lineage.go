package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

// Lineage records live in the beds_lineage collection, one document per
// event with the event ID as _id; a tree is followed down the parent
// field, which needs the index deploy/mongo/indexes.json declares (the
// adapter creates no index itself). Both operations use the primary: a
// record must be readable as soon as it is written.

// lineageCollection holds lineage records.
const lineageCollection = "beds_lineage"

var _ lineage.Log = (*Store)(nil)

// lineageDoc is one document of beds_lineage. started is a BSON date
// (milliseconds, for the DBA's purges and TTL indexes); started_us keeps
// the microseconds and is what reads use.
type lineageDoc struct {
	Event      string    `bson:"_id"`
	Parent     string    `bson:"parent,omitempty"`
	Op         string    `bson:"op"`
	Template   string    `bson:"template,omitempty"`
	Node       string    `bson:"node,omitempty"`
	Outcome    string    `bson:"outcome"`
	Started    time.Time `bson:"started"`
	StartedUS  int64     `bson:"started_us"`
	DurationUS int64     `bson:"duration_us"`
	Trace      string    `bson:"trace,omitempty"`
}

func (d *lineageDoc) record() wire.Lineage {
	return wire.Lineage{Event: d.Event, Parent: d.Parent, Op: wire.Op(d.Op), Template: d.Template, Node: d.Node,
		Outcome: d.Outcome, Started: time.UnixMicro(d.StartedUS).UTC(), DurationUS: d.DurationUS, Trace: d.Trace}
}

// lineageColl is the collection, read on the primary whatever the URI's
// read preference.
func (s *Store) lineageColl() *mongo.Collection {
	return s.db.Collection(lineageCollection, options.Collection().SetReadPreference(readpref.Primary()))
}

// AppendLineage stores records in beds_lineage, replacing the document of
// an event already stored (the later record wins, also within recs). It
// is one unordered bulk write of upserts, each record's last version only,
// so the server may apply them in any order. A failure may leave some
// stored. started is stored to the microsecond, in UTC. A record whose
// Event or Parent is not a valid event ID fails the call before anything
// is written.
func (s *Store) AppendLineage(ctx context.Context, recs []wire.Lineage) error {
	last := make(map[string]int, len(recs))
	for i := range recs {
		r := &recs[i]
		if !lineage.Valid(r.Event) || (r.Parent != "" && !lineage.Valid(r.Parent)) {
			return fmt.Errorf("lineage: record %d: event %.40q or parent %.40q is not a valid event ID", i, r.Event, r.Parent)
		}
		last[r.Event] = i
	}
	if len(recs) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(last))
	for i := range recs {
		r := &recs[i]
		if last[r.Event] != i {
			continue
		}
		started := r.Started.UTC().Truncate(time.Microsecond)
		doc := lineageDoc{Event: r.Event, Parent: r.Parent, Op: string(r.Op), Template: r.Template, Node: r.Node,
			Outcome: r.Outcome, Started: started, StartedUS: started.UnixMicro(), DurationUS: r.DurationUS, Trace: r.Trace}
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: idKey, Value: r.Event}}).
			SetReplacement(doc).SetUpsert(true))
	}
	if _, err := s.lineageColl().BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return classify(nil, fmt.Errorf("store lineage: %w", err))
	}
	return nil
}

// LineageTree returns the record of event and those of the events below
// it by Parent links, at most max of them and at most lineage.MaxDepth
// levels deep, breadth first (within a level by started, then event): one
// query per level, on the parent index. It returns none when event is
// unknown.
func (s *Store) LineageTree(ctx context.Context, event string, max int) ([]wire.Lineage, error) {
	if max < 1 {
		return nil, fmt.Errorf("lineage of %s: max %d: must be at least 1", event, max)
	}
	if _, ok := ctx.Deadline(); !ok && s.opTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
	}
	coll := s.lineageColl()
	var root lineageDoc
	err := coll.FindOne(ctx, bson.D{{Key: idKey, Value: event}}).Decode(&root)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(nil, fmt.Errorf("read lineage: %w", err))
	}
	out := []wire.Lineage{root.record()}
	level := []string{event}
	for depth := 0; depth < lineage.MaxDepth && len(level) > 0 && len(out) < max; depth++ {
		// Every record has one parent, so a record is met once, below its
		// parent, except event itself when the links loop back to it.
		filter := bson.D{
			{Key: "parent", Value: bson.D{{Key: "$in", Value: level}}},
			{Key: idKey, Value: bson.D{{Key: "$ne", Value: event}}},
		}
		opts := options.Find().SetSort(bson.D{{Key: "started_us", Value: 1}, {Key: idKey, Value: 1}}).
			SetLimit(int64(max - len(out)))
		if err := maxTimeFind(ctx, opts); err != nil {
			return nil, classify(nil, fmt.Errorf("read lineage: %w", err))
		}
		cur, err := coll.Find(ctx, filter, opts)
		if err != nil {
			return nil, classify(nil, fmt.Errorf("read lineage: %w", err))
		}
		var docs []lineageDoc
		err = cur.All(ctx, &docs)
		if err != nil {
			return nil, classify(nil, fmt.Errorf("read lineage: %w", err))
		}
		level = level[:0:0]
		for i := range docs {
			out = append(out, docs[i].record())
			level = append(level, docs[i].Event)
		}
	}
	return out, nil
}

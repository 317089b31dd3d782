package mongo

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/lineage/lineagetest"
	"github.com/beds-project/beds/shared/testenv"
)

// lineageStore opens a store on a fresh database with the indexes of
// deploy/mongo/indexes.json.
func lineageStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{URI: testenv.Mongo(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The store is a lineage.Log as the lineage package states it.
func TestLineageLog(t *testing.T) {
	lineagetest.Run(t, func(t *testing.T) lineage.Log { return lineageStore(t) })
}

// Empty optional fields are left out of the document, and started is a
// BSON date.
func TestLineageDocument(t *testing.T) {
	s := lineageStore(t)
	root, child := lineagetest.Sample()
	lineagetest.Append(t, s, root, child)
	raw, err := s.db.Collection(lineageCollection).FindOne(lineagetest.Context(t), bson.D{{Key: "_id", Value: root.Event}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"parent", "template"} {
		if _, err := raw.LookupErr(absent); err == nil {
			t.Errorf("root's empty %s is stored: %s", absent, raw)
		}
	}
	if v, err := raw.LookupErr("started"); err != nil || v.Type != bson.TypeDateTime {
		t.Errorf("started is not a date: %s", raw)
	}
}

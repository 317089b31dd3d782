package mariadb

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/lineage/lineagetest"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// lineageStore opens a store on a fresh database with 000_beds.sql
// applied, and returns it with the database's DSN.
func lineageStore(t *testing.T) (*Store, string) {
	t.Helper()
	dsn := testenv.MariaDB(t)
	s, err := Open(Config{DSN: dsn, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The store is a lineage.Log as the lineage package states it.
func TestLineageLog(t *testing.T) {
	lineagetest.Run(t, func(t *testing.T) lineage.Log {
		s, _ := lineageStore(t)
		return s
	})
}

// Empty optional fields are stored as NULL.
func TestLineageEmptyIsNull(t *testing.T) {
	s, dsn := lineageStore(t)
	root, child := lineagetest.Sample()
	lineagetest.Append(t, s, root, child)
	var nulls int
	if err := rawDB(t, dsn).QueryRow("SELECT SUM((lin_parent IS NULL) + (lin_template IS NULL) + (lin_node IS NULL) + (lin_trace IS NULL)) FROM beds_lineage").
		Scan(&nulls); err != nil || nulls != 4 {
		t.Errorf("root's empty parent and template, child's node and trace: %d NULLs, %v; want 4", nulls, err)
	}
}

// More records than one statement carries are stored in several.
func TestLineageManyRecords(t *testing.T) {
	s, _ := lineageStore(t)
	const n = 2*lineageChunk + 3
	recs := []wire.Lineage{lineagetest.Rec("B", "", 0)}
	for i := 1; i < n; i++ {
		recs = append(recs, lineagetest.Rec(lineage.Child("B", i), "B", i))
	}
	lineagetest.Append(t, s, recs...)
	if got := lineagetest.Events(t, s, "B", 5000); len(got) != n {
		t.Errorf("%d records, want %d", len(got), n)
	}
	if got := lineagetest.Events(t, s, "B", 10); len(got) != 10 {
		t.Errorf("max 10: %d records", len(got))
	}
}

// Text longer than its column, or not UTF-8, is made to fit rather than
// failing the batch. (An invalid ID fails the call: lineagetest.Run.)
func TestLineageFitsValues(t *testing.T) {
	s, _ := lineageStore(t)
	odd := lineagetest.Rec("F", "", 0)
	odd.Node = strings.Repeat("ü", 300)
	odd.Trace = "00-" + strings.Repeat("a", 100) + "\xff"
	odd.Template = "bad\xffname"
	odd.Outcome = strings.Repeat("o", 40)
	odd.Op = "a-very-long-operation-name"
	lineagetest.Append(t, s, odd)
	got, err := s.LineageTree(lineagetest.Context(t), "F", 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	r := got[0]
	if r.Node != strings.Repeat("ü", 255) || r.Trace != "00-"+strings.Repeat("a", 52) || r.Template != "bad\uFFFDname" ||
		len(r.Outcome) != 32 || len(r.Op) != 16 {
		t.Errorf("stored %+v", r)
	}
}

// Without the table, every lineage statement names the script to apply;
// Ping does not need the table.
func TestLineageMissingTable(t *testing.T) {
	s, dsn := lineageStore(t)
	ctx := lineagetest.Context(t)
	if err := s.CheckLineage(ctx); err != nil {
		t.Fatalf("CheckLineage: %v", err)
	}
	if _, err := rawDB(t, dsn).Exec("DROP TABLE beds_lineage"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping needs beds_lineage: %v", err)
	}
	for what, err := range map[string]error{
		"check":  s.CheckLineage(ctx),
		"append": s.AppendLineage(ctx, []wire.Lineage{lineagetest.Rec("E", "", 0)}),
		"tree": func() error {
			_, err := s.LineageTree(ctx, "E", 1)
			return err
		}(),
	} {
		if err == nil || !strings.Contains(err.Error(), "beds_lineage is missing: apply deploy/mariadb/000_beds.sql") {
			t.Errorf("%s: %v", what, err)
		}
	}
}

// The recorder writes to MariaDB, and what it wrote reads back as a tree.
func TestLineageRecorder(t *testing.T) {
	s, _ := lineageStore(t)
	r := lineage.NewRecorder(s, lineage.RecorderConfig{Batch: 3, Interval: 10 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	r.Record(lineagetest.Rec("Q", "", 0))
	for i := 1; i <= 7; i++ {
		r.Record(lineagetest.Rec(lineage.Child("Q", i), "Q", i))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Written() != 8 || r.Dropped() != 0 {
		t.Errorf("written %d dropped %d", r.Written(), r.Dropped())
	}
	recs, err := s.LineageTree(lineagetest.Context(t), "Q", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := lineagetest.Shape(lineage.Tree(recs, "Q")); got != "Q(Q.1 Q.2 Q.3 Q.4 Q.5 Q.6 Q.7)" {
		t.Errorf("tree %s", got)
	}
}

package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/lineage"
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

// lctx is a context with a deadline, so every statement carries its
// server-side limit as requests' statements do.
func lctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var linT0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// lrec is a record started ms milliseconds after linT0.
func lrec(event, parent string, ms int) wire.Lineage {
	return wire.Lineage{Event: event, Parent: parent, Op: wire.OpRead, Template: "users", Node: "appserver@host",
		Outcome: "ok", Started: linT0.Add(time.Duration(ms) * time.Millisecond), DurationUS: int64(ms)}
}

func appendAll(t *testing.T, s *Store, recs ...wire.Lineage) {
	t.Helper()
	if err := s.AppendLineage(lctx(t), recs); err != nil {
		t.Fatalf("AppendLineage: %v", err)
	}
}

func treeEvents(t *testing.T, s *Store, event string, max int) []string {
	t.Helper()
	recs, err := s.LineageTree(lctx(t), event, max)
	if err != nil {
		t.Fatalf("LineageTree(%s): %v", event, err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Event
	}
	return out
}

// Every field round-trips; empty optional fields are NULL and come back
// empty; started is kept to the microsecond, in UTC.
func TestLineageRoundTrip(t *testing.T) {
	s, dsn := lineageStore(t)
	root := wire.Lineage{Event: "01JDQ3V0Z8K4M6T2X9B7C5N1PA", Op: wire.OpBatch, Node: "appserver@h1", Outcome: "ok",
		Started: linT0.In(time.FixedZone("X", 3600)), DurationUS: 1234,
		Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	child := wire.Lineage{Event: root.Event + ".1", Parent: root.Event, Op: wire.OpCreate, Template: "users",
		Outcome: "conflict", Started: linT0.Add(time.Millisecond), DurationUS: 99}
	appendAll(t, s, root, child)

	got, err := s.LineageTree(lctx(t), root.Event, 10)
	if err != nil {
		t.Fatal(err)
	}
	root.Started = linT0.Truncate(time.Microsecond)
	child.Started = child.Started.Truncate(time.Microsecond)
	if want := []wire.Lineage{root, child}; !reflect.DeepEqual(got, want) {
		t.Errorf("read\n got  %+v\n want %+v", got, want)
	}
	db := rawDB(t, dsn)
	var nulls int
	if err := db.QueryRow("SELECT SUM((lin_parent IS NULL) + (lin_template IS NULL) + (lin_node IS NULL) + (lin_trace IS NULL)) FROM beds_lineage").
		Scan(&nulls); err != nil || nulls != 4 {
		t.Errorf("root's empty parent and template, child's node and trace: %d NULLs, %v; want 4", nulls, err)
	}
	if recs, err := s.LineageTree(lctx(t), "nope", 10); err != nil || len(recs) != 0 {
		t.Errorf("unknown event: %v %v, want none", recs, err)
	}
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

// A record for a stored event replaces it, across calls and within one.
func TestLineageReplaces(t *testing.T) {
	s, _ := lineageStore(t)
	first := lrec("E", "", 0)
	first.Outcome = "unavailable"
	appendAll(t, s, first, lrec("E.1", "E", 1))

	again := lrec("E", "P", 5)
	again.Outcome = "timeout"
	latest := again
	latest.Outcome = "ok"
	latest.Node = ""
	appendAll(t, s, again, latest)

	got, err := s.LineageTree(lctx(t), "E", 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	latest.Started = latest.Started.Truncate(time.Microsecond)
	if !reflect.DeepEqual(got[0], latest) {
		t.Errorf("stored %+v, want the latest %+v", got[0], latest)
	}
}

func TestLineageTree(t *testing.T) {
	s, _ := lineageStore(t)
	appendAll(t, s,
		// A request R fanned out to R.1 and R.2; R.2's node called another
		// node, whose request X names R.2 as parent by header.
		lrec("R", "", 0), lrec("R.2", "R", 2), lrec("R.1", "R", 5), lrec("R.1.1", "R.1", 6),
		lrec("X", "R.2", 3), lrec("X.1", "X", 4),
		// Unrelated.
		lrec("S", "", 0), lrec("S.1", "S", 1),
		// A loop: C1's parent is C3, below it.
		lrec("C1", "C3", 0), lrec("C2", "C1", 1), lrec("C3", "C2", 2), lrec("C3.1", "C3", 3),
		// A self loop.
		lrec("L", "L", 0), lrec("L.1", "L", 1),
	)
	for _, tc := range []struct {
		event string
		max   int
		want  string
	}{
		// Breadth first; within a level by started.
		{"R", 100, "R R.2 R.1 X R.1.1 X.1"},
		{"R", 4, "R R.2 R.1 X"},
		{"R", 1, "R"},
		{"R.2", 100, "R.2 X X.1"},
		{"X", 100, "X X.1"},
		{"C1", 100, "C1 C2 C3 C3.1"},
		{"C2", 100, "C2 C3 C1 C3.1"},
		{"L", 100, "L L.1"},
		{"nope", 100, ""},
	} {
		t.Run(tc.event+"/"+strconv.Itoa(tc.max), func(t *testing.T) {
			if got := strings.Join(treeEvents(t, s, tc.event, tc.max), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	recs, err := s.LineageTree(lctx(t), "R", 100)
	if err != nil {
		t.Fatal(err)
	}
	tree := lineage.Tree(recs, "R")
	if got := treeShape(tree); got != "R(R.1(R.1.1) R.2(X(X.1)))" {
		t.Errorf("Tree = %s", got)
	}
	recs, err = s.LineageTree(lctx(t), "C1", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := treeShape(lineage.Tree(recs, "C1")); got != "C1(C2(C3(C3.1)))" {
		t.Errorf("Tree of a loop = %s", got)
	}

	if _, err := s.LineageTree(lctx(t), "R", 0); err == nil {
		t.Error("max 0 accepted")
	}
}

func treeShape(n *wire.Lineage) string {
	if n == nil {
		return "<nil>"
	}
	if len(n.Children) == 0 {
		return n.Event
	}
	parts := make([]string, len(n.Children))
	for i, c := range n.Children {
		parts[i] = treeShape(c)
	}
	return n.Event + "(" + strings.Join(parts, " ") + ")"
}

// A chain is followed lineage.MaxDepth levels below its event, no more.
func TestLineageDepthCap(t *testing.T) {
	s, _ := lineageStore(t)
	recs := []wire.Lineage{lrec("D0", "", 0)}
	for i := 1; i <= lineage.MaxDepth+5; i++ {
		recs = append(recs, lrec(fmt.Sprintf("D%d", i), fmt.Sprintf("D%d", i-1), i))
	}
	appendAll(t, s, recs...)
	got := treeEvents(t, s, "D0", 1000)
	if len(got) != lineage.MaxDepth+1 || got[len(got)-1] != fmt.Sprintf("D%d", lineage.MaxDepth) {
		t.Errorf("%d records, last %s; want %d, last D%d", len(got), got[len(got)-1], lineage.MaxDepth+1, lineage.MaxDepth)
	}
}

// More records than one statement carries are stored in several.
func TestLineageManyRecords(t *testing.T) {
	s, _ := lineageStore(t)
	const n = 2*lineageChunk + 3
	recs := []wire.Lineage{lrec("B", "", 0)}
	for i := 1; i < n; i++ {
		recs = append(recs, lrec(lineage.Child("B", i), "B", i))
	}
	appendAll(t, s, recs...)
	if got := treeEvents(t, s, "B", 5000); len(got) != n {
		t.Errorf("%d records, want %d", len(got), n)
	}
	if got := treeEvents(t, s, "B", 10); len(got) != 10 {
		t.Errorf("max 10: %d records", len(got))
	}
}

// Text longer than its column, or not UTF-8, is made to fit rather than
// failing the batch; an invalid ID fails the call before anything is
// written.
func TestLineageFitsValues(t *testing.T) {
	s, _ := lineageStore(t)
	odd := lrec("F", "", 0)
	odd.Node = strings.Repeat("ü", 300)
	odd.Trace = "00-" + strings.Repeat("a", 100) + "\xff"
	odd.Template = "bad\xffname"
	odd.Outcome = strings.Repeat("o", 40)
	odd.Op = "a-very-long-operation-name"
	appendAll(t, s, odd)
	got, err := s.LineageTree(lctx(t), "F", 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	r := got[0]
	if r.Node != strings.Repeat("ü", 255) || r.Trace != "00-"+strings.Repeat("a", 52) || r.Template != "bad\uFFFDname" ||
		len(r.Outcome) != 32 || len(r.Op) != 16 {
		t.Errorf("stored %+v", r)
	}

	for _, bad := range []wire.Lineage{lrec("", "", 0), lrec("ok", "has space", 0), lrec(strings.Repeat("e", 201), "", 0)} {
		if err := s.AppendLineage(lctx(t), []wire.Lineage{lrec("G", "", 0), bad}); err == nil || !strings.Contains(err.Error(), "record 1") {
			t.Errorf("%q/%q: %v, want an error naming record 1", bad.Event, bad.Parent, err)
		}
	}
	if got := treeEvents(t, s, "G", 1); len(got) != 0 {
		t.Error("a call with an invalid record stored its valid one")
	}
}

// Without the table, every lineage statement names the script to apply;
// Ping does not need the table.
func TestLineageMissingTable(t *testing.T) {
	s, dsn := lineageStore(t)
	if err := s.CheckLineage(lctx(t)); err != nil {
		t.Fatalf("CheckLineage: %v", err)
	}
	if _, err := rawDB(t, dsn).Exec("DROP TABLE beds_lineage"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(lctx(t)); err != nil {
		t.Errorf("Ping needs beds_lineage: %v", err)
	}
	for what, err := range map[string]error{
		"check":  s.CheckLineage(lctx(t)),
		"append": s.AppendLineage(lctx(t), []wire.Lineage{lrec("E", "", 0)}),
		"tree": func() error {
			_, err := s.LineageTree(lctx(t), "E", 1)
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
	r.Record(lrec("Q", "", 0))
	for i := 1; i <= 7; i++ {
		r.Record(lrec(lineage.Child("Q", i), "Q", i))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Written() != 8 || r.Dropped() != 0 {
		t.Errorf("written %d dropped %d", r.Written(), r.Dropped())
	}
	recs, err := s.LineageTree(lctx(t), "Q", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := treeShape(lineage.Tree(recs, "Q")); got != "Q(Q.1 Q.2 Q.3 Q.4 Q.5 Q.6 Q.7)" {
		t.Errorf("tree %s", got)
	}
}

package mariadb

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

func repoUsers(t *testing.T) *template.Template {
	t.Helper()
	file := filepath.Join(testenv.Root(t), "templates", "users_rec.toml")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.Parse(file, src, map[string]string{"mariadb": "mariadb"})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func run(t *testing.T, s *Store, tpl *template.Template, body string) (*store.Result, error) {
	t.Helper()
	req, err := wire.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	q, err := store.Build(tpl, testenv.Name("ev-"), req, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Exec(ctx, q)
}

// TestConnectionLoss cuts the network between adapter and server.
func TestConnectionLoss(t *testing.T) {
	dsn := testenv.MariaDB(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, cfg.Addr)
	cfg.Addr = proxy.Addr()
	s, err := Open(Config{DSN: cfg.FormatDSN()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tpl := repoUsers(t)
	if _, err := run(t, s, tpl, `{"template":"users","op":"count"}`); err != nil {
		t.Fatal(err)
	}
	proxy.Close()
	for _, body := range []string{
		`{"template":"users","op":"count"}`,
		`{"template":"users","op":"create","data":{"email":"x@example.com"}}`,
		`{"template":"users","op":"delete","filter":{"id":1}}`,
	} {
		_, err := run(t, s, tpl, body)
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeUnavailable {
			t.Errorf("%s: %v, want unavailable", body, err)
		}
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Error("ping through a closed proxy succeeded")
	}
}

// TestValuesRoundTrip stores every field type and reads it back.
func TestValuesRoundTrip(t *testing.T) {
	s, err := Open(Config{DSN: testenv.MariaDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tpl := repoUsers(t)
	if _, err := run(t, s, tpl, `{"template":"users","op":"create","data":{"email":"ünï@example.com","name":"Zoë 🚀","age":-7,"score":0.125,"active":false,"prefs":{"a":[1,2],"b":null}}}`); err != nil {
		t.Fatal(err)
	}
	res, err := run(t, s, tpl, `{"template":"users","op":"read","filter":{"email":"ünï@example.com"}}`)
	if err != nil || len(res.Rows) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	r := res.Rows[0]
	prefs, _ := json.Marshal(r["prefs"])
	if r["name"] != "Zoë 🚀" || r["age"] != int64(-7) || r["score"] != 0.125 || r["active"] != false || string(prefs) != `{"a":[1,2],"b":null}` {
		t.Fatalf("row %#v prefs %s", r, prefs)
	}
	if ts, ok := r["created"].(time.Time); !ok || time.Since(ts) > time.Minute || ts.Location() != time.UTC {
		t.Fatalf("created %v", r["created"])
	}
}

// TestRedeliveredWrites sends each write twice with one event ID, also
// concurrently: it is applied once and both answers are the first result.
func TestRedeliveredWrites(t *testing.T) {
	s, err := Open(Config{DSN: testenv.MariaDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tpl := repoUsers(t)
	runAs := func(event, body string) (*store.Result, error) {
		req, err := wire.DecodeRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Build(tpl, event, req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return s.Exec(context.Background(), q)
	}
	first, err := runAs("ev-create", `{"template":"users","op":"create","data":{"email":"once@example.com"}}`)
	if err != nil {
		t.Fatal(err)
	}
	again, err := runAs("ev-create", `{"template":"users","op":"create","data":{"email":"once@example.com"}}`)
	if err != nil || again.Key != first.Key || again.Affected != 1 || !again.Replayed {
		t.Fatalf("redelivered create = %+v, %v; first %+v", again, err, first)
	}
	// Concurrent deliveries of one update: exactly one applies it.
	results := make(chan *store.Result, 8)
	for i := 0; i < 8; i++ {
		go func() {
			r, err := runAs("ev-update", `{"template":"users","op":"update","filter":{"email":"once@example.com"},"data":{"age":1}}`)
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	applied := 0
	for i := 0; i < 8; i++ {
		if r := <-results; r != nil && !r.Replayed {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("update applied %d times", applied)
	}
	// A failed write leaves no record: the same event can succeed later.
	if _, err := runAs("ev-del", `{"template":"users","op":"delete","filter":{"email":"nobody@example.com"}}`); err == nil {
		t.Fatal("delete of nothing succeeded")
	}
	if _, err := runAs("ev-del", `{"template":"users","op":"delete","filter":{"email":"once@example.com"}}`); err != nil {
		t.Fatalf("retry after failure: %v", err)
	}
	// Reusing an event ID for another write is refused.
	_, err = runAs("ev-create", `{"template":"users","op":"delete","filter":{"email":"once@example.com"}}`)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeConflict {
		t.Fatalf("reused event: %v", err)
	}
	res, err := runAs("ev-count", `{"template":"users","op":"count"}`)
	if err != nil || res.Count != 0 {
		t.Fatalf("count %+v %v", res, err)
	}
}

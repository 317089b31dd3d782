package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// fanoutNode starts an appserver with small include and batch limits, so
// each limit can be reached, and returns a client of it. extra is more
// config.
func fanoutNode(t *testing.T, s servers, extra ...string) *client.Client {
	t.Helper()
	environ := map[string]string{
		"BEDS_CONFIG_DIR": configDir(t, strings.Join(extra, "\n")+`
[limits]
max_batch = 20
max_include = 4
max_include_depth = 2
max_include_rows = 50
max_operations = 30
max_rows = 120

[fanout]
request = 4
node = 8

[brokers.dispatcher]
instances = 4
prefetch = 16
`),
		"BEDS_TEMPLATE_DIR": filepath.Join(testenv.Root(t), "templates"), // the shipped domains and relations
		"BEDS_AMQP_URL":     s.amqpURL,
		"BEDS_MARIADB_DSN":  s.mariaDSN,
		"BEDS_MONGO_URI":    s.mongoURI,
		"BEDS_HTTP_ADDR":    "127.0.0.1:0",
		"BEDS_NODE_NAME":    "fanout-appserver",
		"BEDS_LOG_LEVEL":    "warn",
	}
	startNode(t, environ)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.amqpURL, client.Options{Name: "fanout-test"})
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// count returns the number of rows of a MariaDB table matching where.
func count(t *testing.T, dsn, table, where string, args ...any) int {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	must(t, err)
	defer db.Close()
	var n int
	must(t, db.QueryRow("SELECT COUNT(*) FROM "+table+" WHERE "+where, args...).Scan(&n))
	return n
}

func TestInclude(t *testing.T) {
	s := newServers(t)
	c := fanoutNode(t, s)

	// Two users; Ann has three orders of two items each and two profiles
	// (in MongoDB), Bob one order without items and no profile.
	ann := do(t, c, `{"template":"users","op":"create","data":{"email":"ann@example.com","name":"Ann"}}`).Key
	bob := do(t, c, `{"template":"users","op":"create","data":{"email":"bob@example.com","name":"Bob"}}`).Key
	var annOrders []any
	for i := range 3 {
		o := do(t, c, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%v,"total":%d,"status":"open"}}`, ann, 10*(i+1))).Key
		annOrders = append(annOrders, o)
		for j := range 2 {
			do(t, c, fmt.Sprintf(`{"template":"items","op":"create","data":{"order":%v,"sku":"sku-%d-%d","qty":%d}}`, o, i, j, j+1))
		}
	}
	do(t, c, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%v,"total":5}}`, bob))
	for _, h := range []string{"ann", "ann2"} {
		do(t, c, fmt.Sprintf(`{"template":"profiles","op":"create","data":{"user":%v,"handle":%q}}`, ann, h))
	}

	t.Run("nested and cross-store", func(t *testing.T) {
		r := do(t, c, `{"template":"users","op":"read","sort":["id"],"include":["orders.items","profiles"]}`)
		if len(r.Rows) != 2 {
			t.Fatalf("rows %v", r.Rows)
		}
		a, b := r.Rows[0], r.Rows[1]
		orders, ok := a["orders"].([]any)
		if !ok || len(orders) != 3 {
			t.Fatalf("ann's orders %#v", a["orders"])
		}
		for i, o := range orders {
			o := o.(map[string]any)
			if fmt.Sprint(o["id"]) != fmt.Sprint(annOrders[i]) || fmt.Sprint(o["user"]) != fmt.Sprint(ann) {
				t.Errorf("order %d: %v", i, o)
			}
			if items, ok := o["items"].([]any); !ok || len(items) != 2 {
				t.Errorf("order %d items %#v", i, o["items"])
			}
		}
		if profiles, ok := a["profiles"].([]any); !ok || len(profiles) != 2 {
			t.Errorf("ann's profiles %#v", a["profiles"])
		}
		if bo, ok := b["orders"].([]any); !ok || len(bo) != 1 || len(bo[0].(map[string]any)["items"].([]any)) != 0 {
			t.Errorf("bob's orders %#v", b["orders"])
		}
		if bp, ok := b["profiles"].([]any); !ok || len(bp) != 0 {
			t.Errorf("bob's profiles %#v, want []", b["profiles"])
		}
	})
	t.Run("many-to-one", func(t *testing.T) {
		r := do(t, c, `{"template":"orders","op":"read","sort":["id"],"fields":["total"],"include":["customer"]}`)
		if len(r.Rows) != 4 {
			t.Fatalf("rows %v", r.Rows)
		}
		u, ok := r.Rows[0]["customer"].(map[string]any)
		if !ok || u["email"] != "ann@example.com" {
			t.Fatalf("customer of the first order %#v (the join field is added to fields)", r.Rows[0]["customer"])
		}
	})
	t.Run("no rows no queries", func(t *testing.T) {
		r := do(t, c, `{"template":"users","op":"read","filter":{"email":"nobody@example.com"},"include":["orders"]}`)
		if len(r.Rows) != 0 {
			t.Fatalf("rows %v", r.Rows)
		}
	})
	for _, tc := range []struct {
		name, body string
		code       wire.Code
		msg        string
	}{
		{"unknown relation", `{"template":"users","op":"read","include":["invoices"]}`, wire.CodeBadField, `template users has no relation "invoices" (relations: orders, profiles)`},
		{"unknown nested relation", `{"template":"users","op":"read","include":["orders.lines"]}`, wire.CodeBadField, `template orders has no relation "lines"`},
		{"too deep", `{"template":"users","op":"read","include":["orders.customer.orders"]}`, wire.CodeTooLarge, "3 relations deep: at most 2"},
		{"too many paths", `{"template":"users","op":"read","include":["orders","profiles","orders.items","orders.customer","profiles"]}`, wire.CodeTooLarge, "5 include paths: at most 4"},
		{"include on a write", `{"template":"users","op":"delete","filter":{"id":1},"include":["orders"]}`, wire.CodeBadRequest, "include applies to read only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := call(c, tc.body)
			checkCode(t, r, err, tc.code)
			if !strings.Contains(r.Error.Message, tc.msg) {
				t.Errorf("message %q, want %q", r.Error.Message, tc.msg)
			}
		})
	}
	t.Run("too many rows", func(t *testing.T) {
		var batch []string
		for i := range 51 {
			batch = append(batch, fmt.Sprintf(`{"template":"items","op":"create","data":{"order":%v,"sku":"bulk-%d"}}`, annOrders[0], i))
		}
		for len(batch) > 0 {
			n := min(len(batch), 20)
			do(t, c, `{"op":"batch","batch":[`+strings.Join(batch[:n], ",")+`]}`)
			batch = batch[n:]
		}
		r, err := call(c, `{"template":"orders","op":"read","include":["items"]}`)
		checkCode(t, r, err, wire.CodeTooLarge)
		if !strings.Contains(r.Error.Message, "include items: more than 50 rows") {
			t.Errorf("message %q", r.Error.Message)
		}
	})
	t.Run("too many rows in all", func(t *testing.T) {
		read := fmt.Sprintf(`{"template":"items","op":"read","filter":{"order":%v}}`, annOrders[0]) // 53 rows
		r, err := call(c, `{"op":"batch","batch":[`+read+","+read+","+read+`]}`)
		checkCode(t, r, err, wire.CodeTooLarge)
		failed := 0
		for _, it := range r.Items {
			if !it.OK && strings.Contains(it.Error.Message, "more than 120 rows in all (limits.max_rows)") {
				failed++
			}
		}
		if failed == 0 {
			t.Errorf("no item failed for max_rows: %+v", r)
		}
	})
	t.Run("too many operations", func(t *testing.T) {
		items := make([]string, 11)
		for i := range items {
			items[i] = `{"template":"users","op":"read","include":["orders.items"]}` // 3 operations each
		}
		r, err := call(c, `{"op":"batch","batch":[`+strings.Join(items, ",")+`]}`)
		checkCode(t, r, err, wire.CodeTooLarge)
		if !strings.Contains(r.Error.Message, "33 database operations") || len(r.Items) != 0 {
			t.Errorf("reply %+v", r)
		}
	})
}

func TestBatch(t *testing.T) {
	s := newServers(t)
	c := fanoutNode(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	send := func(event string, items ...string) (*wire.Reply, error) {
		var req wire.Request
		must(t, json.Unmarshal([]byte(`{"op":"batch","batch":[`+strings.Join(items, ",")+`]}`), &req))
		if event == "" {
			return c.Do(ctx, &req)
		}
		return c.Send(ctx, event, &req)
	}

	t.Run("atomic on one MariaDB store", func(t *testing.T) {
		r, err := send("", `{"template":"users","op":"create","data":{"email":"a1@example.com"}}`,
			`{"template":"users","op":"create","data":{"email":"a2@example.com"}}`)
		if err != nil || !r.Atomic || len(r.Items) != 2 || !r.Items[0].OK || !r.Items[1].OK || r.Items[0].Key == nil {
			t.Fatalf("reply %+v, %v", r, err)
		}
		if r.Items[0].Event != r.Event+".1" || r.Items[1].Event != r.Event+".2" {
			t.Errorf("item events %s %s under %s", r.Items[0].Event, r.Items[1].Event, r.Event)
		}
	})
	t.Run("third write fails, nothing applied", func(t *testing.T) {
		r, err := send("", `{"template":"users","op":"create","data":{"email":"b1@example.com"}}`,
			`{"template":"orders","op":"create","data":{"user":1,"total":3}}`,
			`{"template":"users","op":"create","data":{"email":"a1@example.com"}}`, // taken above: conflict
			`{"template":"users","op":"count"}`)
		checkCode(t, r, err, wire.CodeConflict)
		if !r.Atomic || r.Items[2].Error == nil || r.Items[2].Error.Code != wire.CodeConflict || !strings.HasPrefix(r.Error.Message, "batch[2]: ") {
			t.Fatalf("reply %+v", r)
		}
		for _, i := range []int{0, 1} {
			if r.Items[i].OK || !strings.Contains(r.Items[i].Error.Message, "rolled back") {
				t.Errorf("item %d: %+v", i, r.Items[i])
			}
		}
		if !r.Items[3].OK {
			t.Errorf("the read failed with the writes: %+v", r.Items[3].Error)
		}
		if n := count(t, s.mariaDSN, "tbl_usr", "usr_email = 'b1@example.com'"); n != 0 {
			t.Errorf("%d users b1 after a rolled-back batch", n)
		}
		if n := count(t, s.mariaDSN, "tbl_ord", "ord_total = 3"); n != 0 {
			t.Errorf("%d orders of the rolled-back batch", n)
		}
	})
	t.Run("redelivered batch applied once", func(t *testing.T) {
		event := c.NewEvent()
		items := []string{`{"template":"users","op":"create","data":{"email":"r1@example.com"}}`,
			`{"template":"orders","op":"create","data":{"user":7,"total":77}}`}
		first, err := send(event, items...)
		must(t, err)
		second, err := send(event, items...)
		must(t, err)
		for i := range first.Items {
			if fmt.Sprint(first.Items[i].Key) != fmt.Sprint(second.Items[i].Key) {
				t.Errorf("item %d: key %v then %v", i, first.Items[i].Key, second.Items[i].Key)
			}
		}
		if n := count(t, s.mariaDSN, "tbl_usr", "usr_email = 'r1@example.com'"); n != 1 {
			t.Errorf("%d users r1, want 1", n)
		}
		if n := count(t, s.mariaDSN, "tbl_ord", "ord_total = 77"); n != 1 {
			t.Errorf("%d orders 77, want 1", n)
		}
		if n := count(t, s.mariaDSN, "beds_events", "evt_id LIKE ?", event+"%"); n != 3 {
			t.Errorf("%d event records for the batch, want 3 (the batch and its two writes)", n)
		}
	})
	t.Run("across stores, not atomic", func(t *testing.T) {
		r, err := send("", `{"template":"users","op":"create","data":{"email":"x1@example.com"}}`,
			`{"template":"profiles","op":"create","data":{"user":1,"handle":"x1"}}`)
		if err != nil || r.Atomic || !r.Items[0].OK || !r.Items[1].OK {
			t.Fatalf("reply %+v, %v", r, err)
		}
		// The profile handle is unique: the second write fails, the first
		// applied, the third never ran.
		r, err = send("", `{"template":"users","op":"create","data":{"email":"x2@example.com"}}`,
			`{"template":"profiles","op":"create","data":{"user":2,"handle":"x1"}}`,
			`{"template":"users","op":"create","data":{"email":"x3@example.com"}}`)
		checkCode(t, r, err, wire.CodeConflict)
		if r.Atomic || !r.Items[0].OK || r.Items[1].OK || r.Items[2].OK || !strings.Contains(r.Items[2].Error.Message, "not applied") {
			t.Fatalf("reply %+v", r)
		}
		if n := count(t, s.mariaDSN, "tbl_usr", "usr_email IN ('x2@example.com', 'x3@example.com')"); n != 1 {
			t.Errorf("%d of x2, x3 applied, want 1 (x2)", n)
		}
	})
	t.Run("reads run concurrently and fail alone", func(t *testing.T) {
		r, err := send("", `{"template":"users","op":"count"}`, `{"template":"nope","op":"read"}`,
			`{"op":"ping"}`, `{"template":"users","op":"read","filter":{"email":"a1@example.com"},"include":["orders"]}`)
		checkCode(t, r, err, wire.CodeUnknownTemplate)
		if !r.Items[0].OK || r.Items[1].OK || !r.Items[2].OK || !r.Items[3].OK || len(r.Items[3].Rows) != 1 {
			t.Fatalf("reply %+v", r)
		}
	})
	t.Run("point reads share a query, each gets its row", func(t *testing.T) {
		a := do(t, c, `{"template":"users","op":"read","filter":{"email":"a1@example.com"}}`).Rows[0]["id"]
		b := do(t, c, `{"template":"users","op":"read","filter":{"email":"a2@example.com"}}`).Rows[0]["id"]
		point := func(id any, fields string) string {
			return fmt.Sprintf(`{"template":"users","op":"read","filter":{"id":%v}%s}`, id, fields)
		}
		r, err := send("", point(a, ""), point(b, ""), point(999999, ""), point(a, ""), point(b, `,"fields":["email"]`), point(a, `,"fields":["email"]`))
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"a1@example.com", "a2@example.com", "", "a1@example.com", "a2@example.com", "a1@example.com"} {
			it := r.Items[i]
			got := ""
			if len(it.Rows) == 1 {
				got = fmt.Sprint(it.Rows[0]["email"])
			}
			if !it.OK || got != want || it.Count != int64(len(it.Rows)) || it.Event != fmt.Sprintf("%s.%d", r.Event, i+1) {
				t.Errorf("item %d: %+v, want email %q", i, it, want)
			}
		}
		if len(r.Items[4].Rows[0]) != 1 {
			t.Errorf("fields not kept: %v", r.Items[4].Rows[0])
		}
		// MongoDB, keys stored as _id.
		p1 := do(t, c, `{"template":"profiles","op":"create","data":{"user":7,"handle":"p1"}}`).Key
		p2 := do(t, c, `{"template":"profiles","op":"create","data":{"user":8,"handle":"p2"}}`).Key
		r, err = send("", fmt.Sprintf(`{"template":"profiles","op":"read","filter":{"id":%q},"fields":["handle"]}`, p2),
			fmt.Sprintf(`{"template":"profiles","op":"read","filter":{"id":%q},"fields":["handle"]}`, p1))
		if err != nil || len(r.Items[0].Rows) != 1 || r.Items[0].Rows[0]["handle"] != "p2" || len(r.Items[1].Rows) != 1 || r.Items[1].Rows[0]["handle"] != "p1" {
			t.Fatalf("profiles: %+v, %v", r, err)
		}
	})
	t.Run("an invalid write stops every write", func(t *testing.T) {
		r, err := send("", `{"template":"nope","op":"count"}`, `{"template":"users","op":"create","data":{"email":"v1@example.com"}}`,
			`{"template":"users","op":"create","data":{"nope":1}}`)
		checkCode(t, r, err, wire.CodeBadField) // the invalid write's, not the read's
		if !strings.Contains(r.Items[1].Error.Message, "not applied: batch[2] failed") {
			t.Errorf("item 1: %+v", r.Items[1].Error)
		}
		if r.Items[1].OK || count(t, s.mariaDSN, "tbl_usr", "usr_email = 'v1@example.com'") != 0 {
			t.Fatalf("reply %+v", r)
		}
	})
	t.Run("too large", func(t *testing.T) {
		items := make([]string, 21)
		for i := range items {
			items[i] = `{"op":"ping"}`
		}
		r, err := send("", items...)
		checkCode(t, r, err, wire.CodeTooLarge)
	})
}

func TestLineage(t *testing.T) {
	for _, store := range []string{"mariadb", "mongo"} {
		t.Run("recorded in "+store, func(t *testing.T) { lineageSuite(t, store) })
	}
}

// lineageSuite records lineage in the store named and reads it back.
func lineageSuite(t *testing.T, store string) {
	s := newServers(t)
	c := fanoutNode(t, s, fmt.Sprintf("[lineage]\nstore = %q\n", store))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// tree waits for the recorder, which writes in the background.
	tree := func(event string, want int) *wire.Lineage {
		t.Helper()
		for {
			l, err := c.Lineage(ctx, event)
			if err == nil && size(l) >= want {
				return l
			}
			select {
			case <-ctx.Done():
				t.Fatalf("lineage of %s: %+v, %v; want %d events", event, l, err, want)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	user := do(t, c, `{"template":"users","op":"create","data":{"email":"l@example.com"}}`).Key
	do(t, c, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%v,"total":1}}`, user))

	t.Run("a read with include, recorded on request", func(t *testing.T) {
		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		req := wire.Request{Template: "users", Op: wire.OpRead, Include: []string{"orders.items", "profiles"}, Record: true}
		r, err := c.Do(ctx, &req, client.WithTraceparent(tp))
		must(t, err)
		if r.Trace != tp {
			t.Errorf("reply traceparent %q, want %q", r.Trace, tp)
		}
		l := tree(r.Event, 4)
		if l.Op != wire.OpRead || l.Template != "users" || l.Outcome != "ok" || l.Node != "fanout-appserver" || l.Trace != tp || len(l.Children) != 2 {
			t.Fatalf("root %+v", l)
		}
		orders, profiles := l.Children[0], l.Children[1]
		if orders.Event != r.Event+".1" || orders.Template != "orders" || profiles.Event != r.Event+".2" || profiles.Template != "profiles" {
			t.Errorf("children %+v %+v", orders, profiles)
		}
		if len(orders.Children) != 1 || orders.Children[0].Event != r.Event+".1.1" || orders.Children[0].Template != "items" {
			t.Errorf("orders' children %+v", orders.Children)
		}
	})
	t.Run("a plain read is not recorded", func(t *testing.T) {
		r := do(t, c, `{"template":"users","op":"count"}`)
		time.Sleep(300 * time.Millisecond) // three recorder intervals
		_, err := c.Lineage(ctx, r.Event)
		if we, ok := err.(*wire.Error); !ok || we.Code != wire.CodeNotFound {
			t.Fatalf("lineage of an unrecorded read: %v, want not_found", err)
		}
	})
	t.Run("a batch and a request joining it", func(t *testing.T) {
		r, err := c.Batch(ctx, []wire.Request{
			{Template: "orders", Op: wire.OpCreate, Data: json.RawMessage(fmt.Sprintf(`{"user":%v,"total":2}`, user))},
			{Template: "users", Op: wire.OpCount},
		})
		must(t, err)
		joined, err := c.Do(ctx, &wire.Request{Template: "users", Op: wire.OpCount, Record: true}, client.WithParent(r.Event))
		must(t, err)
		l := tree(r.Event, 4)
		if l.Op != wire.OpBatch || len(l.Children) != 3 {
			t.Fatalf("batch tree %+v", l)
		}
		var events []string
		for _, ch := range l.Children {
			events = append(events, ch.Event)
		}
		for _, want := range []string{r.Event + ".1", r.Event + ".2", joined.Event} {
			if !slices.Contains(events, want) {
				t.Errorf("children %v lack %s", events, want)
			}
		}
	})
}

// size counts the events of a tree.
func size(l *wire.Lineage) int {
	if l == nil {
		return 0
	}
	n := 1
	for _, c := range l.Children {
		n += size(c)
	}
	return n
}

// TestIncludeLatency is the seed's claim in miniature: with 20 ms added
// each way between the node and MariaDB, a read that includes 24 child
// records across 3 relations takes well under a third of what 24
// sequential queries would (24 round trips of 40 ms, computed, not run).
func TestIncludeLatency(t *testing.T) {
	const delay = 20 * time.Millisecond
	s := newServers(t)
	mc, err := mysql.ParseDSN(s.mariaDSN)
	must(t, err)
	proxy := testenv.NewProxy(t, mc.Addr)
	slow := *mc
	slow.Addr = proxy.Addr()
	s.mariaDSN = slow.FormatDSN()
	c := fanoutNode(t, s)

	// One user with 4 orders of 4 items each: 4 orders + 16 items + the 4
	// orders' customer rows are 24 child records across 3 relations.
	user := do(t, c, `{"template":"users","op":"create","data":{"email":"far@example.com"}}`).Key
	var items []string
	for i := range 4 {
		o := do(t, c, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%v,"total":%d}}`, user, i)).Key
		for j := range 4 {
			items = append(items, fmt.Sprintf(`{"template":"items","op":"create","data":{"order":%v,"sku":"s%d"}}`, o, j))
		}
	}
	do(t, c, `{"op":"batch","batch":[`+strings.Join(items, ",")+`]}`)
	body := fmt.Sprintf(`{"template":"users","op":"read","filter":{"id":%v},"include":["orders.items","orders.customer"]}`, user)
	check := func(r *wire.Reply) {
		t.Helper()
		orders := r.Rows[0]["orders"].([]any)
		children := len(orders)
		for _, o := range orders {
			o := o.(map[string]any)
			children += len(o["items"].([]any))
			if o["customer"] != nil {
				children++
			}
		}
		if children != 24 {
			t.Fatalf("%d child records, want 24", children)
		}
	}
	check(do(t, c, body)) // warm: connections open, statements prepared

	proxy.SetDelay(delay)
	const runs = 5
	var took []time.Duration
	for range runs {
		start := time.Now()
		r := do(t, c, body)
		took = append(took, time.Since(start))
		check(r)
	}
	slices.Sort(took)
	median := took[runs/2]
	sequential := 24 * 2 * delay
	t.Logf("include of 24 child records across 3 relations, %v added each way to MariaDB: median %v of %d (all %v); 24 sequential queries: at least %v",
		delay, median.Round(time.Millisecond), runs, took, sequential)
	if median >= sequential/3 {
		t.Errorf("median %v, want under a third of %v", median, sequential)
	}
}

// TestBedsctlFanout drives bedsctl's include, batch and lineage against a
// node.
func TestBedsctlFanout(t *testing.T) {
	s := newServers(t)
	c := fanoutNode(t, s)
	bin := buildBedsctl(t)
	run := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BEDS_AMQP_URL="+s.amqpURL)
		cmd.Stdin = strings.NewReader(stdin)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	user := do(t, c, `{"template":"users","op":"create","data":{"email":"ctl@example.com"}}`).Key
	file := filepath.Join(t.TempDir(), "batch.json")
	must(t, os.WriteFile(file, []byte(fmt.Sprintf(`[
		{"template":"orders","op":"create","data":{"user":%v,"total":4}},
		{"template":"orders","op":"create","data":{"user":%v,"total":5}}]`, user, user)), 0o644))

	out, code := run("", "batch", file)
	if code != 0 || !strings.Contains(out, `"atomic": true`) {
		t.Fatalf("bedsctl batch: exit %d\n%s", code, out)
	}
	event := regexp.MustCompile(`"event": "([^".]+)"`).FindStringSubmatch(out)
	if event == nil {
		t.Fatalf("no event in\n%s", out)
	}
	out, code = run(`[{"op":"ping"},{"template":"users","op":"count"}]`, "batch", "-")
	if code != 0 || !strings.Contains(out, `"items": [`) {
		t.Errorf("bedsctl batch -: exit %d\n%s", code, out)
	}
	out, code = run("", "batch", filepath.Join(t.TempDir(), "missing.json"))
	if code == 0 {
		t.Errorf("bedsctl batch of a missing file: exit 0\n%s", out)
	}

	out, code = run("", "call", "users", "read", "--filter", fmt.Sprintf(`{"id":%v}`, user), "--include", "orders", "--record")
	if code != 0 || strings.Count(out, `"total":`) != 2 {
		t.Errorf("bedsctl call --include: exit %d\n%s", code, out)
	}

	// The recorder writes in the background: the tree shows up shortly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code = run("", "lineage", event[1])
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 || !strings.Contains(out, event[1]+"  batch") || strings.Count(out, "create orders") != 2 || !strings.Contains(out, "└─ "+event[1]+".2") {
		t.Errorf("bedsctl lineage: exit %d\n%s", code, out)
	}
}

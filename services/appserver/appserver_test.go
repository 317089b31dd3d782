package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/ipl/ipltest"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// servers is one test's set of real servers, each with names of its own.
type servers struct {
	amqpURL, mariaDSN, mongoURI string
}

func newServers(t *testing.T) servers {
	t.Helper()
	s := servers{amqpURL: testenv.AMQP(t), mariaDSN: testenv.MariaDB(t), mongoURI: testenv.Mongo(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testenv.ApplySQL(ctx, s.mariaDSN, filepath.Join("testdata", "slow.sql")); err != nil {
		t.Fatal(err)
	}
	return s
}

// configDir writes beds.toml from the repository plus an env file: the
// repository's env_dev.toml (which trusts guest, the tests' RabbitMQ user,
// as an admin) followed by the test's extras.
func configDir(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(testenv.Root(t), "deploy", "config")
	base, err := os.ReadFile(filepath.Join(root, "beds.toml"))
	must(t, err)
	dev, err := os.ReadFile(filepath.Join(root, "env_dev.toml"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "beds.toml"), base, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "env_dev.toml"), []byte(string(dev)+"\n"+extra), 0o644))
	return dir
}

// templateDir holds the repository's templates plus the test-only ones.
func templateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, pattern := range []string{filepath.Join(testenv.Root(t), "templates", "*.toml"), filepath.Join("testdata", "templates", "*.toml")} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644))
		}
	}
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// startNode boots an appserver in this process and runs it until the test
// ends.
func startNode(t *testing.T, environ map[string]string) *ipl.Node {
	t.Helper()
	return ipltest.Start(t, role, environ)
}

func TestDataPath(t *testing.T) {
	s := newServers(t)
	mc, err := mysql.ParseDSN(s.mariaDSN)
	must(t, err)
	proxy := testenv.NewProxy(t, mc.Addr)
	flaky := *mc
	flaky.Addr = proxy.Addr()

	environ := map[string]string{
		"BEDS_CONFIG_DIR": configDir(t, fmt.Sprintf(`
[templates]
check = "warn"   # broken_rec.toml's objects are never deployed, on purpose

[stores.flaky]
kind = "mariadb"
dsn = %q

[brokers.dispatcher]
instances = 4
prefetch = 16
`, flaky.FormatDSN())),
		"BEDS_TEMPLATE_DIR": templateDir(t),
		"BEDS_AMQP_URL":     s.amqpURL,
		"BEDS_MARIADB_DSN":  s.mariaDSN,
		"BEDS_MONGO_URI":    s.mongoURI,
		"BEDS_HTTP_ADDR":    "127.0.0.1:0",
		"BEDS_NODE_NAME":    "test-appserver",
		"BEDS_LOG_LEVEL":    "warn",
	}
	n := startNode(t, environ)

	ipltest.CheckOps(t, n)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.amqpURL, client.Options{Name: "test"})
	must(t, err)
	defer c.Close()

	t.Run("mariadb users", func(t *testing.T) { crudSuite(t, c, usersCase) })
	t.Run("mongo profiles", func(t *testing.T) { crudSuite(t, c, profilesCase) })
	t.Run("mongo logs key is the event", func(t *testing.T) {
		r := do(t, c, `{"template":"logs","op":"create","data":{"at":"2026-11-26T10:00:00Z","level":"info","message":"hello","attrs":{"n":1}}}`)
		if r.Key != r.Event {
			t.Fatalf("key %v, want the event %s", r.Key, r.Event)
		}
		r = do(t, c, fmt.Sprintf(`{"template":"logs","op":"read","filter":{"id":%q}}`, r.Event))
		if len(r.Rows) != 1 || r.Rows[0]["message"] != "hello" {
			t.Fatalf("rows %v", r.Rows)
		}
	})
	t.Run("example params override", func(t *testing.T) {
		r := do(t, c, `{"template":"example","op":"create","data":{"code":"A-1","title":"Anvil","qty":3,"price":9.5}}`)
		if r.Key != "A-1" {
			t.Fatalf("key %v", r.Key)
		}
		r = do(t, c, `{"template":"example","op":"read","filter":{"code":"A-1"},"fields":["title","qty","price"]}`)
		if len(r.Rows) != 1 || r.Rows[0]["title"] != "Anvil" || r.Rows[0]["qty"] != json.Number("3") || r.Rows[0]["price"] != json.Number("9.5") {
			t.Fatalf("rows %v", r.Rows)
		}
	})
	t.Run("error codes", func(t *testing.T) { errorCodes(t, c, s, n, proxy) })
	t.Run("plain amqp client", func(t *testing.T) { plainAMQP(t, s.amqpURL) })
	t.Run("bedsctl", func(t *testing.T) { bedsctl(t, s.amqpURL) })
	t.Run("still serving", func(t *testing.T) {
		r := do(t, c, `{"op":"ping"}`)
		if r.Node != "test-appserver" {
			t.Fatalf("ping answered by %q", r.Node)
		}
		do(t, c, `{"template":"users","op":"count"}`)
	})
}

// do sends body and fails the test unless the reply is ok.
func do(t *testing.T, c *client.Client, body string) *wire.Reply {
	t.Helper()
	r, err := call(c, body)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return r
}

func call(c *client.Client, body string) (*wire.Reply, error) {
	var req wire.Request
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.Do(ctx, &req)
}

// crudCase is one template's requests for the five operations.
type crudCase struct {
	template string
	create   []string // data objects; the first two match filterTwo
	keyIsInt bool
	// filterTwo matches exactly the first two created records.
	filterTwo string
	update    string // data
	checkRead func(t *testing.T, rows []wire.Row)
}

var usersCase = crudCase{
	template: "users",
	create: []string{
		`{"email":"ann@example.com","name":"Ann","age":34,"score":4.5,"active":true,"prefs":{"lang":"en"}}`,
		`{"email":"bob@example.com","name":"Bob","age":41,"active":false}`,
		`{"email":"cy@example.com","name":"Cy","age":19}`,
	},
	keyIsInt:  true,
	filterTwo: `{"age":{"gte":30}}`,
	update:    `{"name":null,"score":1.25}`,
	checkRead: func(t *testing.T, rows []wire.Row) {
		r := rows[0] // sorted -age: Bob first
		if r["email"] != "bob@example.com" || r["active"] != false || r["prefs"] != nil {
			t.Errorf("row %v", r)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r["created"])); err != nil {
			t.Errorf("created %v: %v", r["created"], err)
		}
		if p, ok := rows[1]["prefs"].(map[string]any); !ok || p["lang"] != "en" {
			t.Errorf("prefs %v", rows[1]["prefs"])
		}
	},
}

var profilesCase = crudCase{
	template: "profiles",
	create: []string{
		`{"user":1,"handle":"ann","bio":"hi","rating":4.5,"public":true,"tags":["a","b"],"since":"2026-01-02T03:04:05Z"}`,
		`{"user":2,"handle":"bob","public":false,"since":"2026-02-01T00:00:00Z"}`,
		`{"user":3,"handle":"cy"}`,
	},
	filterTwo: `{"since":{"gte":"2026-01-01T00:00:00Z"}}`,
	update:    `{"bio":null,"rating":1.25}`,
	checkRead: func(t *testing.T, rows []wire.Row) {
		r := rows[0] // sorted -user: bob first
		if r["handle"] != "bob" || r["public"] != false || r["since"] != "2026-02-01T00:00:00Z" {
			t.Errorf("row %v", r)
		}
		if tags, ok := rows[1]["tags"].([]any); !ok || len(tags) != 2 || tags[0] != "a" {
			t.Errorf("tags %v", rows[1]["tags"])
		}
	},
}

// crudSuite runs every operation of the contract on one template.
func crudSuite(t *testing.T, c *client.Client, tc crudCase) {
	var keys []any
	for _, data := range tc.create {
		r := do(t, c, fmt.Sprintf(`{"template":%q,"op":"create","data":%s}`, tc.template, data))
		if r.Affected != 1 || r.Key == nil {
			t.Fatalf("create: affected %d key %v", r.Affected, r.Key)
		}
		keys = append(keys, r.Key)
	}
	if tc.keyIsInt {
		if _, ok := keys[0].(json.Number); !ok {
			t.Fatalf("key %v (%T) is not a number", keys[0], keys[0])
		}
	}
	key := func(i int) string { b, _ := json.Marshal(keys[i]); return string(b) }

	r := do(t, c, fmt.Sprintf(`{"template":%q,"op":"count"}`, tc.template))
	if r.Count != 3 {
		t.Fatalf("count = %d, want 3", r.Count)
	}
	r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"count","filter":%s}`, tc.template, tc.filterTwo))
	if r.Count != 2 {
		t.Fatalf("filtered count = %d, want 2", r.Count)
	}
	sortKey := map[string]string{"users": "-age", "profiles": "-user"}[tc.template]
	r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"read","filter":%s,"sort":[%q]}`, tc.template, tc.filterTwo, sortKey))
	if len(r.Rows) != 2 || r.Count != 2 {
		t.Fatalf("read: %d rows", len(r.Rows))
	}
	tc.checkRead(t, r.Rows)

	// fields, limit and offset
	r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"read","fields":["id"],"sort":["id"],"limit":1,"offset":1}`, tc.template))
	if len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
		t.Fatalf("paged read: %v", r.Rows)
	}
	// in, ne, like, or, null
	for _, f := range []struct {
		filter string
		want   int
	}{
		{fmt.Sprintf(`{"id":{"in":[%s,%s]}}`, key(0), key(2)), 2},
		{fmt.Sprintf(`{"id":{"nin":[%s]}}`, key(0)), 2},
		{fmt.Sprintf(`{"id":{"ne":%s}}`, key(1)), 2},
		{fmt.Sprintf(`{"or":[{"id":%s},{"id":%s}]}`, key(0), key(1)), 2},
		{fmt.Sprintf(`{"and":[{"id":{"gte":%s}},{"id":{"lte":%s}}]}`, key(0), key(1)), 2},
		{map[string]string{"users": `{"email":{"like":"%@example.com"}}`, "profiles": `{"handle":{"like":"_n%"}}`}[tc.template],
			map[string]int{"users": 3, "profiles": 1}[tc.template]},
		{map[string]string{"users": `{"score":{"null":true}}`, "profiles": `{"rating":{"null":true}}`}[tc.template], 2},
		{map[string]string{"users": `{"score":null}`, "profiles": `{"rating":{"null":false}}`}[tc.template],
			map[string]int{"users": 2, "profiles": 1}[tc.template]},
	} {
		r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"read","filter":%s}`, tc.template, f.filter))
		if len(r.Rows) != f.want {
			t.Errorf("filter %s: %d rows, want %d", f.filter, len(r.Rows), f.want)
		}
	}

	r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"update","filter":%s,"data":%s}`, tc.template, tc.filterTwo, tc.update))
	if r.Affected != 2 {
		t.Fatalf("update affected %d, want 2", r.Affected)
	}
	r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"read","filter":{"id":%s}}`, tc.template, key(0)))
	row := r.Rows[0]
	for k, v := range map[string]any{"users": map[string]any{"name": nil, "score": json.Number("1.25"), "email": "ann@example.com"},
		"profiles": map[string]any{"bio": nil, "rating": json.Number("1.25"), "handle": "ann"}}[tc.template].(map[string]any) {
		if row[k] != v {
			t.Errorf("after update %s = %v (%T), want %v", k, row[k], row[k], v)
		}
	}

	r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"delete","filter":{"id":%s}}`, tc.template, key(2)))
	if r.Affected != 1 {
		t.Fatalf("delete affected %d", r.Affected)
	}
	r = do(t, c, fmt.Sprintf(`{"template":%q,"op":"count"}`, tc.template))
	if r.Count != 2 {
		t.Fatalf("count after delete = %d", r.Count)
	}
}

// errorCodes reaches every error code of the contract with a real request.
func errorCodes(t *testing.T, c *client.Client, s servers, n *ipl.Node, proxy *testenv.Proxy) {
	do(t, c, `{"template":"users","op":"create","data":{"email":"dup@example.com"}}`)
	do(t, c, `{"template":"profiles","op":"create","data":{"user":9,"handle":"dup"}}`)
	cases := []struct {
		name string
		body string
		code wire.Code
	}{
		{"bad_request: filter not an object", `{"template":"users","op":"read","filter":[1]}`, wire.CodeBadRequest},
		{"bad_request: unknown operator", `{"template":"users","op":"read","filter":{"age":{"regex":".*"}}}`, wire.CodeBadRequest},
		{"unknown_template", `{"template":"nope","op":"read"}`, wire.CodeUnknownTemplate},
		{"op_not_allowed", `{"template":"logs","op":"update","filter":{"level":"info"},"data":{"level":"warn"}}`, wire.CodeOpNotAllowed},
		{"bad_field", `{"template":"users","op":"read","filter":{"emial":"x"}}`, wire.CodeBadField},
		{"bad_field: stored name", `{"template":"users","op":"read","sort":["usr_email"]}`, wire.CodeBadField},
		{"bad_field: injection in field", `{"template":"users","op":"read","fields":["email FROM tbl_usr; --"]}`, wire.CodeBadField},
		{"bad_value", `{"template":"users","op":"read","filter":{"age":"old"}}`, wire.CodeBadValue},
		{"bad_value: procedure check", `{"template":"example","op":"create","data":{"code":"neg","title":"x","qty":-1}}`, wire.CodeBadValue},
		{"bad_value: the key a create must name", `{"template":"example","op":"create","data":{"title":"x"}}`, wire.CodeBadValue},
		{"too_large: in list", `{"template":"users","op":"read","filter":{"id":{"in":[` + strings.Repeat("1,", 1000) + `1]}}}`, wire.CodeTooLarge},
		{"conflict: mariadb", `{"template":"users","op":"create","data":{"email":"dup@example.com"}}`, wire.CodeConflict},
		{"conflict: mongo", `{"template":"profiles","op":"create","data":{"user":10,"handle":"dup"}}`, wire.CodeConflict},
		{"not_found: mariadb", `{"template":"users","op":"update","filter":{"id":987654},"data":{"name":"x"}}`, wire.CodeNotFound},
		{"not_found: mongo", `{"template":"profiles","op":"delete","filter":{"handle":"nobody"}}`, wire.CodeNotFound},
		{"internal: missing DBA object", `{"template":"broken","op":"read"}`, wire.CodeInternal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectCode(t, c, tc.body, tc.code) })
	}
	// A key the template marks required is checked before the database:
	// the caller learns which field, not a stored column.
	if _, err := call(c, `{"template":"example","op":"create","data":{"title":"x"}}`); err == nil || !strings.Contains(err.Error(), "field code is required by create") {
		t.Errorf("create without its required key: %v", err)
	}
	// Injection in a value is only ever a bound value: it matches nothing
	// and the table is still there.
	r := do(t, c, `{"template":"users","op":"read","filter":{"email":"x' OR '1'='1"}}`)
	if len(r.Rows) != 0 {
		t.Fatalf("injection matched %d rows", len(r.Rows))
	}
	do(t, c, `{"template":"users","op":"read","filter":{"email":"'; DROP TABLE tbl_usr; --"}}`)
	do(t, c, `{"template":"users","op":"count"}`)

	t.Run("bad_request: not JSON", func(t *testing.T) {
		expectRaw(t, c, wire.RouteRead, []byte(`{"template": users`), wire.CodeBadRequest)
	})
	t.Run("too_large: body", func(t *testing.T) {
		big := `{"template":"users","op":"read","filter":{"email":"` + strings.Repeat("x", 1<<20) + `"}}`
		expectRaw(t, c, wire.RouteRead, []byte(big), wire.CodeTooLarge)
	})
	t.Run("timeout", func(t *testing.T) {
		// The node's deadline (the expiration) passes while the view sleeps;
		// the raw call waits longer than that to see the node's answer.
		reply := rawCall(t, s.amqpURL, wire.RouteRead, amqp.Publishing{
			ContentType: wire.ContentType, Expiration: "700", Body: []byte(`{"template":"slow","op":"read"}`),
		}, 10*time.Second)
		if reply.Error == nil || reply.Error.Code != wire.CodeTimeout {
			t.Fatalf("reply %+v, want timeout", reply)
		}
	})
	t.Run("unavailable, then recovered", func(t *testing.T) {
		do(t, c, `{"template":"flaky","op":"count"}`)
		proxy.Close() // the store's network is gone
		expectCode(t, c, `{"template":"flaky","op":"count"}`, wire.CodeUnavailable)
		waitReady(t, n, false)
		do(t, c, `{"template":"users","op":"count"}`) // other stores still serve
		must(t, proxy.Reopen())
		waitReady(t, n, true)
		do(t, c, `{"template":"flaky","op":"count"}`)
	})
}

// waitReady waits until the node's /readyz says want.
func waitReady(t *testing.T, n *ipl.Node, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + n.Addr() + "/readyz")
		must(t, err)
		resp.Body.Close()
		if (resp.StatusCode == http.StatusOK) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d after 10s, want ready=%v", resp.StatusCode, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func expectCode(t *testing.T, c *client.Client, body string, code wire.Code) {
	t.Helper()
	r, err := call(c, body)
	checkCode(t, r, err, code)
}

func expectRaw(t *testing.T, c *client.Client, key string, body []byte, code wire.Code) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := c.DoRaw(ctx, key, body)
	checkCode(t, r, err, code)
}

func checkCode(t *testing.T, r *wire.Reply, err error, code wire.Code) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want a %s reply", err, code)
	}
	if we.Code != code {
		t.Fatalf("code %s (%s), want %s", we.Code, we.Message, code)
	}
	if r == nil || r.OK || r.Event == "" || r.Node == "" {
		t.Fatalf("reply %+v: want ok=false with event and node", r)
	}
}

// rawCall publishes with a plain AMQP client and waits for the reply on
// direct reply-to.
func rawCall(t *testing.T, url, key string, pub amqp.Publishing, wait time.Duration) *wire.Reply {
	t.Helper()
	body := rawCallBody(t, url, key, pub, wait)
	var r wire.Reply
	must(t, json.Unmarshal(body, &r))
	return &r
}

// rawCallBody publishes pub with routing key key, as url's RabbitMQ user
// (user_id, as shared/client does, so the node trusts it as
// env_dev.toml says), and returns the reply's body.
func rawCallBody(t *testing.T, url, key string, pub amqp.Publishing, wait time.Duration) []byte {
	t.Helper()
	if pub.UserId == "" {
		pub.UserId = amqpUser(t, url)
	}
	return rawCallAs(t, url, key, pub, wait)
}

// rawCallAs is rawCallBody with pub's user_id as it is: none publishes as
// nobody the node knows.
func rawCallAs(t *testing.T, url, key string, pub amqp.Publishing, wait time.Duration) []byte {
	t.Helper()
	ch := testenv.Channel(t, url)
	replies, err := ch.Consume(wire.DirectReplyTo, "", true, false, false, false, nil)
	must(t, err)
	pub.ReplyTo = wire.DirectReplyTo
	pub.CorrelationId = "plain-" + testenv.Name("")
	must(t, ch.PublishWithContext(context.Background(), wire.Exchange, key, false, false, pub))
	select {
	case d := <-replies:
		if d.CorrelationId != pub.CorrelationId {
			t.Fatalf("correlation id %q, want %q", d.CorrelationId, pub.CorrelationId)
		}
		if d.ContentType != wire.ContentType {
			t.Fatalf("content type %q", d.ContentType)
		}
		return d.Body
	case <-time.After(wait):
		t.Fatalf("no reply within %s", wait)
	}
	return nil
}

// amqpUser returns the RabbitMQ user of url.
func amqpUser(t *testing.T, url string) string {
	t.Helper()
	u, err := amqp.ParseURI(url)
	must(t, err)
	return u.Username
}

// plainAMQP checks the reply bodies are exactly the documented shape.
func plainAMQP(t *testing.T, url string) {
	body := rawCallBody(t, url, wire.RouteWrite, amqp.Publishing{ContentType: wire.ContentType, MessageId: "my-event-1",
		Body: []byte(`{"template":"users","op":"create","data":{"email":"plain@example.com","name":"Plain"}}`)}, 10*time.Second)
	var m map[string]any
	must(t, json.Unmarshal(body, &m))
	if m["ok"] != true || m["event"] != "my-event-1" || m["affected"] != 1.0 || m["key"] == nil {
		t.Fatalf("create reply %s", body)
	}
	body = rawCallBody(t, url, wire.RouteRead, amqp.Publishing{ContentType: wire.ContentType,
		Body: []byte(`{"template":"users","op":"read","filter":{"email":{"eq":"plain@example.com"}},"fields":["id","email","name"]}`)}, 10*time.Second)
	var read struct {
		OK    bool             `json:"ok"`
		Event string           `json:"event"`
		Rows  []map[string]any `json:"rows"`
		Count int              `json:"count"`
	}
	must(t, json.Unmarshal(body, &read))
	if !read.OK || len(read.Event) != 26 || read.Count != 1 || len(read.Rows) != 1 || len(read.Rows[0]) != 3 || read.Rows[0]["name"] != "Plain" {
		t.Fatalf("read reply %s", body)
	}
	body = rawCallBody(t, url, wire.RouteRead, amqp.Publishing{ContentType: wire.ContentType,
		Body: []byte(`{"template":"users","op":"read","filter":{"emial":"x"}}`)}, 10*time.Second)
	var bad struct {
		OK    bool       `json:"ok"`
		Error wire.Error `json:"error"`
	}
	must(t, json.Unmarshal(body, &bad))
	if bad.OK || bad.Error.Code != wire.CodeBadField || bad.Error.Field != "emial" || !strings.Contains(bad.Error.Message, "emial") {
		t.Fatalf("error reply %s", body)
	}
}

// buildBedsctl builds the command-line client into the test's folder.
func buildBedsctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bedsctl")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(testenv.Root(t), "shared", "cmd", "bedsctl")).CombinedOutput(); err != nil {
		t.Fatalf("build bedsctl: %v\n%s", err, out)
	}
	return bin
}

// bedsctl drives the command-line client's binary against the node.
func bedsctl(t *testing.T, url string) {
	bin := buildBedsctl(t)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BEDS_AMQP_URL="+url)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ping", "--count", "2"}, 0, "reply from test-appserver"},
		{[]string{"call", "users", "create", "--data", `{"email":"ctl@example.com","name":"Ctl"}`}, 0, `"affected": 1`},
		{[]string{"call", "users", "read", "--filter", `{"email":"ctl@example.com"}`, "--fields", "email,name", "--sort", "-id", "--limit", "5"}, 0, `"name": "Ctl"`},
		{[]string{"call", "--limit", "1", "users", "read"}, 0, `"count": 1`},
		{[]string{"call", "users", "read", "--filter", `{"emial":"x"}`}, 1, `"code": "bad_field"`},
		{[]string{"call", "users", "read", "--filter", `{not json`}, 2, "not valid JSON"},
		{[]string{"call", "users"}, 2, "usage: bedsctl call"},
		{[]string{"frobnicate"}, 2, "unknown command"},
	} {
		out, code := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("bedsctl %v: exit %d, want %d; output lacks %q?\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}

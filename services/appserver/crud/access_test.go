package crud_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/services/appserver/crud"
	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/store/mariadb"
	"github.com/beds-project/beds/shared/store/mongo"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// guarded is a handler over the shipped templates and their [access]
// tables, on a real MariaDB and MongoDB, enforcing [access] unlisted deny.
type guarded struct {
	h   *crud.Handler
	log *slog.Logger
	ids *lineage.Generator
}

func newGuarded(t *testing.T) *guarded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	maria, err := mariadb.Adapter.Open(ctx, config.Store{Kind: config.KindMariaDB, DSN: testenv.MariaDB(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { maria.Close() })
	mgo, err := mongo.Adapter.Open(ctx, config.Store{Kind: config.KindMongo, URI: testenv.Mongo(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgo.Close() })
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := access.NewPolicy(config.UnlistedDeny)
	if err != nil {
		t.Fatal(err)
	}
	h, err := crud.New(crud.Config{Templates: reg, Stores: map[string]store.Store{"mariadb": maria, "mongo": mgo}, Limits: store.DefaultLimits, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	return &guarded{h: h, log: slog.New(slog.NewTextHandler(io.Discard, nil)), ids: lineage.NewGenerator()}
}

// do sends body as caller (nil: nobody) and returns the reply.
func (g *guarded) do(t *testing.T, caller *wire.Identity, body string) *wire.Reply {
	t.Helper()
	req, err := wire.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	m := dispatch.NewMessage(&amqp.Delivery{Body: []byte(body), MessageId: g.ids.New()}, g.log, g.ids)
	m.Request, m.Caller = req, caller
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return g.h.Handle(ctx, m)
}

// ok is do for a request that must succeed.
func (g *guarded) ok(t *testing.T, caller *wire.Identity, body string) *wire.Reply {
	t.Helper()
	r := g.do(t, caller, body)
	if !r.OK {
		t.Fatalf("%s: %s: %s", body, r.Error.Code, r.Error.Message)
	}
	return r
}

// refused is do for a request that must fail with code, its message
// holding each of words.
func (g *guarded) refused(t *testing.T, caller *wire.Identity, body string, code wire.Code, words ...string) {
	t.Helper()
	r := g.do(t, caller, body)
	if r.OK {
		t.Fatalf("%s: ok (%d rows), want %s", body, len(r.Rows), code)
	}
	if r.Error.Code != code {
		t.Fatalf("%s: %s: %s, want %s", body, r.Error.Code, r.Error.Message, code)
	}
	for _, w := range words {
		if !strings.Contains(r.Error.Message, w) {
			t.Errorf("%s: message %q lacks %q", body, r.Error.Message, w)
		}
	}
}

// column returns the values of field in rows, as text, sorted.
func column(rows []wire.Row, field string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprint(r[field])
	}
	slices.Sort(out)
	return out
}

func TestAccessEnforced(t *testing.T) {
	g := newGuarded(t)
	admin := &wire.Identity{Name: "guest", Roles: []string{wire.RoleAdmin}, Service: true}
	shop := &wire.Identity{Name: "shop", Roles: []string{"member"}, Service: true}

	// Two users, each with orders (MariaDB) and a profile (MongoDB); the
	// identities act for them.
	ann := &wire.Identity{Name: "ann", Roles: []string{"member"}, Session: "s1"}
	bob := &wire.Identity{Name: "bob", Roles: []string{"member"}, Session: "s2"}
	ann.User = g.ok(t, admin, `{"template":"users","op":"create","data":{"email":"ann@example.com","name":"Ann"}}`).Key.(int64)
	bob.User = g.ok(t, admin, `{"template":"users","op":"create","data":{"email":"bob@example.com","name":"Bob"}}`).Key.(int64)
	orders := map[*wire.Identity][]string{}
	for _, o := range []struct {
		who   *wire.Identity
		total float64
	}{{ann, 10}, {ann, 20}, {bob, 30}} {
		r := g.ok(t, admin, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%d,"total":%g,"status":"new"}}`, o.who.User, o.total))
		orders[o.who] = append(orders[o.who], fmt.Sprint(r.Key))
	}
	g.ok(t, admin, fmt.Sprintf(`{"template":"items","op":"create","data":{"order":%s,"sku":"A","qty":1}}`, orders[ann][0]))
	for _, who := range []*wire.Identity{ann, bob} {
		g.ok(t, admin, fmt.Sprintf(`{"template":"profiles","op":"create","data":{"id":"p-%s","user":%d,"handle":%q}}`, who.Name, who.User, who.Name))
	}
	user := func(id *wire.Identity) string { return fmt.Sprint(id.User) }

	t.Run("owner-limited reads on both stores", func(t *testing.T) {
		for _, tmpl := range []string{"orders", "profiles"} {
			for _, tc := range []struct {
				caller *wire.Identity
				want   []string // the user of each row
			}{
				{ann, []string{user(ann), user(ann)}},
				{bob, []string{user(bob)}},
				{admin, []string{user(ann), user(ann), user(bob)}},
				{shop, []string{user(ann), user(ann), user(bob)}}, // a service is never limited
			} {
				if tmpl == "profiles" { // one profile each
					tc.want = slices.Compact(tc.want)
				}
				r := g.ok(t, tc.caller, fmt.Sprintf(`{"template":%q,"op":"read"}`, tmpl))
				if got := column(r.Rows, "user"); !slices.Equal(got, tc.want) {
					t.Errorf("%s read by %s: users %v, want %v", tmpl, tc.caller.Name, got, tc.want)
				}
				c := g.ok(t, tc.caller, fmt.Sprintf(`{"template":%q,"op":"count"}`, tmpl))
				if c.Count != int64(len(tc.want)) {
					t.Errorf("%s count by %s: %d, want %d", tmpl, tc.caller.Name, c.Count, len(tc.want))
				}
			}
			// A filter naming another owner finds nothing, whatever it says.
			r := g.ok(t, ann, fmt.Sprintf(`{"template":%q,"op":"read","filter":{"or":[{"user":%d},{"user":%d}]}}`, tmpl, bob.User, ann.User))
			if got := column(r.Rows, "user"); slices.Contains(got, user(bob)) || len(got) == 0 {
				t.Errorf("%s: ann's or-filter naming bob got users %v", tmpl, got)
			}
		}
	})

	t.Run("create sets the owner", func(t *testing.T) {
		r := g.ok(t, ann, `{"template":"orders","op":"create","data":{"total":5,"status":"new"}}`)
		got := g.ok(t, admin, fmt.Sprintf(`{"template":"orders","op":"read","filter":{"id":%v}}`, r.Key))
		if len(got.Rows) != 1 || fmt.Sprint(got.Rows[0]["user"]) != user(ann) {
			t.Fatalf("order created by ann: %v, want user %d", got.Rows, ann.User)
		}
		g.ok(t, ann, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%d,"total":6}}`, ann.User))
		g.refused(t, ann, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%d,"total":7}}`, bob.User), wire.CodeForbidden, "orders", "user")

		r = g.ok(t, bob, `{"template":"profiles","op":"create","data":{"id":"p-bob-2","handle":"bob2"}}`)
		got = g.ok(t, admin, `{"template":"profiles","op":"read","filter":{"id":"p-bob-2"}}`)
		if len(got.Rows) != 1 || fmt.Sprint(got.Rows[0]["user"]) != user(bob) {
			t.Fatalf("profile created by bob: %v, want user %d", got.Rows, bob.User)
		}
		g.refused(t, bob, fmt.Sprintf(`{"template":"profiles","op":"create","data":{"id":"p-x","user":%d,"handle":"x"}}`, ann.User), wire.CodeForbidden)
		// A service names the owner itself.
		g.ok(t, shop, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%d,"total":8}}`, bob.User))
	})

	t.Run("updates touch only the caller's rows", func(t *testing.T) {
		g.ok(t, ann, fmt.Sprintf(`{"template":"orders","op":"update","filter":{"id":%s},"data":{"status":"paid"}}`, orders[ann][0]))
		g.refused(t, ann, fmt.Sprintf(`{"template":"orders","op":"update","filter":{"id":%s},"data":{"status":"paid"}}`, orders[bob][0]), wire.CodeNotFound)
		g.refused(t, ann, fmt.Sprintf(`{"template":"profiles","op":"update","filter":{"id":"p-bob"},"data":{"bio":"mine"}}`), wire.CodeNotFound)
		got := g.ok(t, admin, fmt.Sprintf(`{"template":"orders","op":"read","filter":{"id":%s}}`, orders[bob][0]))
		if got.Rows[0]["status"] != "new" {
			t.Fatalf("bob's order changed by ann: %v", got.Rows[0])
		}
		g.refused(t, ann, fmt.Sprintf(`{"template":"orders","op":"update","filter":{"id":%s},"data":{"user":%d}}`, orders[ann][0], bob.User), wire.CodeForbidden, "user")
		g.ok(t, ann, fmt.Sprintf(`{"template":"orders","op":"update","filter":{"id":%s},"data":{"user":%d}}`, orders[ann][0], ann.User))
	})

	t.Run("forbidden and unauthenticated", func(t *testing.T) {
		g.refused(t, ann, fmt.Sprintf(`{"template":"orders","op":"delete","filter":{"id":%s}}`, orders[ann][1]), wire.CodeForbidden, "delete on template orders needs role admin", `user "ann"`)
		g.refused(t, ann, `{"template":"users","op":"create","data":{"email":"eve@example.com"}}`, wire.CodeForbidden, "create on template users")
		g.refused(t, ann, `{"template":"items","op":"read"}`, wire.CodeForbidden, "one of the roles admin, staff")
		g.refused(t, nil, `{"template":"orders","op":"read"}`, wire.CodeUnauthenticated, wire.HeaderSession)
		g.refused(t, ann, `{"op":"lineage","event":"E"}`, wire.CodeForbidden, "lineage needs role admin")
		g.ok(t, nil, `{"op":"ping"}`)
		g.ok(t, ann, `{"template":"users","op":"read"}`) // users: any member, no owner
	})

	t.Run("include respects the child's rules", func(t *testing.T) {
		// users -> orders (MariaDB) and profiles (MongoDB): ann sees every
		// user (users has no owner), but under each only her own rows.
		r := g.ok(t, ann, `{"template":"users","op":"read","include":["orders","profiles"]}`)
		if len(r.Rows) != 2 {
			t.Fatalf("users read by ann: %d rows, want 2", len(r.Rows))
		}
		for _, row := range r.Rows {
			for _, rel := range []string{"orders", "profiles"} {
				children, _ := row[rel].([]wire.Row)
				for _, c := range children {
					if fmt.Sprint(c["user"]) != user(ann) {
						t.Errorf("user %v: %s row of user %v included for ann", row["id"], rel, c["user"])
					}
				}
				if fmt.Sprint(row["id"]) == user(ann) && len(children) == 0 {
					t.Errorf("ann's own %s missing", rel)
				}
			}
		}
		// An admin gets every child row.
		r = g.ok(t, admin, `{"template":"users","op":"read","include":["orders"]}`)
		n := 0
		for _, row := range r.Rows {
			rows, _ := row["orders"].([]wire.Row)
			n += len(rows)
		}
		if n < 3 {
			t.Errorf("admin's include: %d orders, want every one", n)
		}
		// items is staff only: including it is refused, naming the path.
		g.refused(t, ann, `{"template":"orders","op":"read","include":["items"]}`, wire.CodeForbidden, "include items", "read on template items")
		g.refused(t, ann, `{"template":"users","op":"read","include":["orders.items"]}`, wire.CodeForbidden, "include orders.items")
	})

	t.Run("batch items each checked", func(t *testing.T) {
		r := g.do(t, ann, fmt.Sprintf(`{"op":"batch","batch":[
			{"template":"orders","op":"read","filter":{"id":%s}},
			{"template":"orders","op":"read","filter":{"id":%s}},
			{"template":"items","op":"read"},
			{"template":"orders","op":"count"},
			{"op":"whoami"}]}`, orders[ann][1], orders[bob][0]))
		if r.OK || len(r.Items) != 5 {
			t.Fatalf("batch: ok %v, %d items", r.OK, len(r.Items))
		}
		if it := r.Items[0]; !it.OK || len(it.Rows) != 1 {
			t.Errorf("item 0, ann's order: %+v", it)
		}
		if it := r.Items[1]; !it.OK || len(it.Rows) != 0 {
			t.Errorf("item 1, bob's order read by ann: %+v, want no row", it)
		}
		if it := r.Items[2]; it.OK || it.Error.Code != wire.CodeForbidden {
			t.Errorf("item 2, items: %+v, want forbidden", it)
		}
		if it := r.Items[3]; !it.OK {
			t.Errorf("item 3, count: %+v", it.Error)
		}
		if it := r.Items[4]; it.OK || it.Error.Code != wire.CodeBadRequest || !strings.Contains(it.Error.Message, "ses.whoami") {
			t.Errorf("item 4, whoami: %+v, want bad_request naming ses.whoami", it.Error)
		}
		// A write the caller may not run stops the batch's writes.
		r = g.do(t, ann, `{"op":"batch","batch":[
			{"template":"orders","op":"create","data":{"total":1}},
			{"template":"users","op":"delete","filter":{"id":1}}]}`)
		if r.OK || r.Items[1].Error.Code != wire.CodeForbidden || r.Items[0].OK {
			t.Fatalf("batch with a forbidden write: %+v", r.Items)
		}
	})

	t.Run("user and session ops belong to tercero", func(t *testing.T) {
		g.refused(t, admin, `{"op":"login","data":{"user":"ann","password":"x"}}`, wire.CodeBadRequest, "tercero", "ses.login")
		g.refused(t, admin, `{"op":"register","data":{"user":"eve"}}`, wire.CodeBadRequest, "usr.register")
	})
}

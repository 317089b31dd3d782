package crud

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// shipped loads the repository's templates and relations.
func shipped(t *testing.T) *template.Registry {
	t.Helper()
	reg, err := template.Load(filepath.Join("..", "..", "..", "templates"), map[string]string{"mariadb": "mariadb", "mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// shape writes a plan as "path=event" in plan order, depth first.
func shape(plan []*inclusion) string {
	var parts []string
	var walk func([]*inclusion)
	walk = func(incs []*inclusion) {
		for _, inc := range incs {
			parts = append(parts, inc.path+"="+inc.event)
			walk(inc.next)
		}
	}
	walk(plan)
	return strings.Join(parts, " ")
}

func TestPlan(t *testing.T) {
	reg := shipped(t)
	lim := store.DefaultLimits
	lim.MaxInclude, lim.MaxIncludeDepth = 4, 2
	h := &Handler{templates: reg, limits: lim}
	users := reg.Get("users")
	for _, tc := range []struct {
		name  string
		paths []string
		want  string // the plan, or the error's code and message
	}{
		{"one", []string{"orders"}, "orders=E.1"},
		{"prefix implied", []string{"orders.items"}, "orders=E.1 orders.items=E.1.1"},
		{"order of first mention", []string{"profiles", "orders.items", "orders.customer"},
			"profiles=E.1 orders=E.2 orders.items=E.2.1 orders.customer=E.2.2"},
		{"repeats merge", []string{"orders", "orders.items", "orders", "orders.items"}, "orders=E.1 orders.items=E.1.1"},
		{"unknown", []string{"invoices"}, `bad_field: include "invoices": template users has no relation "invoices" (relations: orders, profiles)`},
		{"unknown below", []string{"orders.lines"}, `bad_field: include "orders.lines": template orders has no relation "lines" (relations: customer, items)`},
		{"empty name", []string{"orders."}, `bad_field: include "orders.": template orders has no relation ""`},
		{"too deep", []string{"orders.customer.orders"}, "too_large: include \"orders.customer.orders\" is 3 relations deep: at most 2"},
		{"too many", []string{"orders", "orders", "orders", "orders", "orders"}, "too_large: 5 include paths: at most 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := h.plan(users, "E", tc.paths, nil)
			got := shape(plan)
			if err != nil {
				we, _ := wire.AsError(err)
				got = fmt.Sprintf("%s: %s", we.Code, we.Message)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestJoinKey(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want any
		ok   bool
	}{
		{int64(7), int64(7), true},
		{7, int64(7), true},
		{int32(7), int64(7), true},
		{json.Number("7"), int64(7), true},
		{"7", "7", true},
		{nil, nil, false},
		{7.5, nil, false},
	} {
		got, ok := joinKey(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("joinKey(%#v) = %#v, %v; want %#v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNest(t *testing.T) {
	reg := shipped(t)
	orders := reg.Relation(reg.Get("users"), "orders")
	customer := reg.Relation(reg.Get("orders"), "customer")
	var mu sync.Mutex

	users := []wire.Row{{"id": int64(1)}, {"id": int64(2)}, {"id": nil}}
	nest(users, orders, []wire.Row{{"id": int64(10), "user": int64(1)}, {"id": int64(11), "user": int32(1)}}, &mu)
	if got := fmt.Sprint(users[0]["orders"], users[1]["orders"], users[2]["orders"]); got != "[map[id:10 user:1] map[id:11 user:1]] [] []" {
		t.Errorf("many: %s", got)
	}
	if users[1]["orders"] == nil {
		t.Error("many: a parent without children must get [] (an empty list), not null")
	}

	os := []wire.Row{{"id": int64(10), "user": int64(1)}, {"id": int64(11), "user": int64(9)}}
	nest(os, customer, []wire.Row{{"id": int64(1), "email": "a@example.com"}}, &mu)
	if got := fmt.Sprint(os[0]["customer"], os[1]["customer"]); got != "map[email:a@example.com id:1] map[]" {
		t.Errorf("one: %s", got)
	}
	if r, ok := os[1]["customer"].(wire.Row); !ok || r != nil {
		t.Errorf("one without a match: %#v, want a nil wire.Row (null)", os[1]["customer"])
	}
}

package crud

import (
	"fmt"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

func TestGroupPoints(t *testing.T) {
	reg := shipped(t)
	h := &Handler{templates: reg, limits: store.DefaultLimits}
	build := func(bodies ...string) []item {
		items := make([]item, len(bodies))
		for i, body := range bodies {
			req, err := wire.DecodeRequest([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			items[i] = item{at: i, req: req, event: fmt.Sprintf("E.%d", i+1), t: reg.Get(req.Template)}
			if items[i].q, items[i].plan, err = h.build(items[i].t, items[i].event, req, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		return items
	}
	// shape writes the groups as their items' positions, then the rest.
	shape := func(groups []*pointGroup, rest []int) string {
		var parts []string
		for _, g := range groups {
			var at []string
			for _, it := range g.items {
				at = append(at, fmt.Sprint(it.at))
			}
			parts = append(parts, "("+strings.Join(at, " ")+")")
		}
		return strings.Join(parts, " ") + fmt.Sprint(" ", rest)
	}
	for _, tc := range []struct {
		name   string
		bodies []string
		most   int
		want   string
	}{
		{"point reads of one template", []string{
			`{"template":"users","op":"read","filter":{"id":1}}`,
			`{"template":"users","op":"read","filter":{"id":{"eq":2}}}`,
			`{"template":"users","op":"read","filter":{"id":1}}`,
		}, 100, "(0 1 2) []"},
		{"not point reads", []string{
			`{"template":"users","op":"read","filter":{"id":1},"sort":["id"]}`,
			`{"template":"users","op":"read","filter":{"id":1},"offset":1}`,
			`{"template":"users","op":"read","filter":{"id":1},"include":["orders"]}`,
			`{"template":"users","op":"read","filter":{"email":"a@example.com"}}`,
			`{"template":"users","op":"read","filter":{"id":{"in":[1,2]}}}`,
			`{"template":"users","op":"read","filter":{"id":1,"age":3}}`,
			`{"template":"users","op":"count","filter":{"id":1}}`,
			`{"template":"users","op":"read","filter":{"id":null}}`,
		}, 100, " [0 1 2 3 4 5 6 7]"},
		{"by template and fields; a single one alone", []string{
			`{"template":"users","op":"read","filter":{"id":1},"fields":["email"]}`,
			`{"template":"orders","op":"read","filter":{"id":1}}`,
			`{"template":"users","op":"read","filter":{"id":2}}`,
			`{"template":"orders","op":"read","filter":{"id":2}}`,
			`{"template":"users","op":"read","filter":{"id":3},"fields":["email"]}`,
		}, 100, "(0 4) (1 3) [2]"},
		{"at most most", []string{
			`{"template":"users","op":"read","filter":{"id":1}}`,
			`{"template":"users","op":"read","filter":{"id":2}}`,
			`{"template":"users","op":"read","filter":{"id":3}}`,
			`{"template":"users","op":"read","filter":{"id":4}}`,
			`{"template":"users","op":"read","filter":{"id":5}}`,
		}, 2, "(0 1) (2 3) [4]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := build(tc.bodies...)
			idx := make([]int, len(items))
			for i := range idx {
				idx[i] = i
			}
			if got := shape(groupPoints(items, idx, tc.most)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

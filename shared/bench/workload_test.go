package bench

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/wire"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix(" read=80, create=10 ,update=10,filtered=0")
	if err != nil {
		t.Fatal(err)
	}
	if m[PointRead] != 80 || m[Create] != 10 || m[Update] != 10 || m[FilteredRead] != 0 {
		t.Fatalf("mix %v", m)
	}
	if s := m.String(); s != "point-read=80,filtered-read=0,create=10,update=10" {
		t.Errorf("String() = %q", s)
	}
	for _, bad := range []string{"", "read", "read=x", "read=-1", "delete=1", "read=0", "read=1,point-read=2"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
	for _, s := range []string{"point-read", "filtered-read", "create", "update", "mixed"} {
		if _, err := ParseOp(s); err != nil {
			t.Errorf("ParseOp(%q): %v", s, err)
		}
	}
	if _, err := ParseOp("delete"); err == nil {
		t.Error("ParseOp(delete) accepted")
	}
}

func TestPickerFollowsWeights(t *testing.T) {
	p := newPicker(Mixed, Mix{PointRead: 80, Create: 10, Update: 10, FilteredRead: 0})
	r := rand.New(rand.NewPCG(3, 4))
	n := map[Op]int{}
	for range 100000 {
		n[p.pick(r)]++
	}
	if n[FilteredRead] != 0 || n[PointRead] < 79000 || n[PointRead] > 81000 || n[Create] < 9500 || n[Update] < 9500 {
		t.Errorf("picked %v", n)
	}
	if !p.needsSeed() || !p.creates() {
		t.Error("mixed picker should seed and create")
	}
	if one := newPicker(Create, nil); one.needsSeed() || !one.creates() || one.pick(r) != Create {
		t.Error("create picker")
	}
}

// TestBodiesAreRequests checks every body is a valid request of the wire
// contract with the fields the baseline reads.
func TestBodiesAreRequests(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{0, 100, 300} {
		w := &Workload{Template: "users", RunID: "bench-ab12", Keys: []int64{7, 8, 9}, Payload: payload(size)}
		for _, op := range Ops {
			key, body := w.body(op, r, "beds1.3", 42)
			req, err := wire.DecodeRequest(body)
			if err != nil {
				t.Fatalf("%s: %v\n%s", op, err, body)
			}
			if (key == wire.RouteWrite) != req.Op.Writes() {
				t.Errorf("%s: routing key %s for op %s", op, key, req.Op)
			}
			var b bReq
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatalf("%s: baseline cannot read %s: %v", op, body, err)
			}
			switch op {
			case Create:
				if b.Data.Email == nil || *b.Data.Email != "bench-ab12-beds1.3-42@bench.invalid" {
					t.Errorf("create email %v", b.Data.Email)
				}
				if size > 200 && (b.Data.Prefs == nil || !strings.Contains(string(*b.Data.Prefs), payload(size))) {
					t.Errorf("payload %d not in prefs: %s", size, body)
				}
				if size <= 200 && (b.Data.Name == nil || len(*b.Data.Name) != size) {
					t.Errorf("payload %d not in name: %s", size, body)
				}
			case PointRead, Update:
				if id := string(b.Filter.ID); id != "7" && id != "8" && id != "9" {
					t.Errorf("%s: id %s", op, id)
				}
			case FilteredRead:
				if b.Filter.Email.Like != "bench-ab12-%" || req.Limit != 10 {
					t.Errorf("filtered read %s", body)
				}
			}
		}
	}
	w := &Workload{Template: "users"}
	if _, err := wire.DecodeRequest(w.cleanupBody("bench-ab12-")); err != nil {
		t.Error(err)
	}
}

func TestErrorCode(t *testing.T) {
	one := &wire.Reply{OK: true, Rows: []wire.Row{{}}}
	for _, tc := range []struct {
		op    Op
		reply *wire.Reply
		err   error
		want  string
	}{
		{PointRead, one, nil, ""},
		{PointRead, &wire.Reply{OK: true}, nil, CodeEmpty},
		{FilteredRead, &wire.Reply{OK: true}, nil, ""},
		{Create, nil, wire.Errorf(wire.CodeConflict, "dup"), "conflict"},
		{Create, nil, json.Unmarshal([]byte("x"), new(int)), "client"},
	} {
		if got := errorCode(tc.op, tc.reply, tc.err); got != tc.want {
			t.Errorf("errorCode(%s, %v) = %q, want %q", tc.op, tc.err, got, tc.want)
		}
	}
}

package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	for _, s := range []string{"point-read", "filtered-read", "create", "update", "delete", "mixed", "batch", "include"} {
		if op, err := ParseOp(s); err != nil || string(op) != s {
			t.Errorf("ParseOp(%q) = %q, %v", s, op, err)
		}
	}
	for _, bad := range []string{"", "remove", "Delete", "read"} {
		if _, err := ParseOp(bad); err == nil {
			t.Errorf("ParseOp(%q) accepted", bad)
		}
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
			key, body, err := w.body(op, r, "beds1.3", 42)
			if err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			req, err := wire.DecodeRequest(body)
			if err != nil {
				t.Fatalf("%s: %v\n%s", op, err, body)
			}
			if key != req.RoutingKey() {
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
				// An update writes a value of its own, the payload's
				// length (or longer), so that it changes its row.
				const uniq = "beds1.3-42-"
				v := b.Data.Name
				if size > 200 && b.Data.Prefs != nil {
					var p struct{ Pad string }
					if err := json.Unmarshal(*b.Data.Prefs, &p); err != nil {
						t.Fatalf("update prefs %s: %v", *b.Data.Prefs, err)
					}
					v = &p.Pad
				}
				if op == Update && (v == nil || !strings.HasPrefix(*v, uniq) || len(*v) != max(size, len(uniq))) {
					t.Errorf("update value %v: want %q then the payload, %d bytes: %s", v, uniq, max(size, len(uniq)), body)
				}
			case FilteredRead:
				if b.Filter.Email.Like != "bench-ab12-%" || req.Limit != 10 {
					t.Errorf("filtered read %s", body)
				}
			}
		}
	}
	w := &Workload{Template: "users"}
	for _, body := range [][]byte{w.cleanupPage("bench-ab12-", 1000), w.cleanupBody([]any{json.Number("1"), json.Number("2")})} {
		if _, err := wire.DecodeRequest(body); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestErrorCode(t *testing.T) {
	one := &wire.Reply{OK: true, Rows: []wire.Row{{}}}
	items := func(its ...wire.Reply) *wire.Reply { return &wire.Reply{OK: true, Items: its} }
	row := wire.Reply{OK: true, Rows: []wire.Row{{"id": 1}}}
	withOrders := func(children any) *wire.Reply {
		return &wire.Reply{OK: true, Rows: []wire.Row{{"id": 1, "orders": children}}}
	}
	decoded, err := wire.DecodeReply([]byte(`{"ok":true,"rows":[{"id":1,"orders":[{"id":5},{"id":6}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	w := &Workload{Batch: 2, Children: 2}
	for _, tc := range []struct {
		name  string
		op    Op
		reply *wire.Reply
		err   error
		want  string
	}{
		{"point read", PointRead, one, nil, ""},
		{"point read found nothing", PointRead, &wire.Reply{OK: true}, nil, CodeEmpty},
		{"filtered read may find nothing", FilteredRead, &wire.Reply{OK: true}, nil, ""},
		{"contract code", Create, nil, wire.Errorf(wire.CodeConflict, "dup"), "conflict"},
		{"no code", Create, nil, json.Unmarshal([]byte("x"), new(int)), "client"},
		{"batch", Batch, items(row, row), nil, ""},
		{"batch missing an item", Batch, items(row), nil, CodeItems},
		{"batch without items", Batch, &wire.Reply{OK: true}, nil, CodeItems},
		{"batch item failed", Batch, items(row, wire.Reply{Error: wire.Errorf(wire.CodeTimeout, "slow")}), nil, "timeout"},
		{"batch item found nothing", Batch, items(wire.Reply{OK: true}, row), nil, CodeEmpty},
		{"batch refused", Batch, nil, wire.Errorf(wire.CodeTooLarge, "batch"), "too_large"},
		{"include as decoded", Include, decoded, nil, ""},
		{"include as built", Include, withOrders([]wire.Row{{}, {}}), nil, ""},
		{"include found nothing", Include, &wire.Reply{OK: true}, nil, CodeEmpty},
		{"include without children", Include, &wire.Reply{OK: true, Rows: []wire.Row{{"id": 1}}}, nil, CodeChildren},
		{"include short of children", Include, withOrders([]any{map[string]any{}}), nil, CodeChildren},
		{"delete", Delete, &wire.Reply{OK: true, Affected: 1}, nil, ""},
		{"delete deleted nothing", Delete, &wire.Reply{OK: true}, nil, CodeEmpty},
		{"delete of a record gone", Delete, nil, wire.Errorf(wire.CodeNotFound, "no users record matches the filter"), "not_found"},
	} {
		if got := w.errorCode(tc.op, tc.reply, tc.err); got != tc.want {
			t.Errorf("%s: errorCode = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseBatchSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"16", []int{16}},
		{"1,4,16,64", []int{1, 4, 16, 64}},
		{" 64 , 1 ", []int{64, 1}},
		{"10000", []int{wire.MaxBatch}},
		{"", nil},
		{"0", nil},
		{"-1", nil},
		{"10001", nil},
		{"4,x", nil},
		{"4,,16", nil},
		{"4,4", nil},
	} {
		got, err := ParseBatchSizes(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseBatchSizes(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseBatchSizes(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestManyOpBodies checks the batch and include bodies are the requests
// the issue describes, and the seeding and cleanup of include's children.
func TestManyOpBodies(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	keys := []int64{7, 8, 9}
	for _, n := range []int{1, 4, 16, 64} {
		w := &Workload{Template: "users", RunID: "bench-ab12", Keys: keys, Batch: n}
		key, body, err := w.body(Batch, r, "beds1.3", 42)
		if err != nil {
			t.Fatal(err)
		}
		req, err := wire.DecodeRequest(body)
		if err != nil {
			t.Fatalf("batch %d: %v\n%s", n, err, body)
		}
		if key != wire.RouteRead || req.RoutingKey() != wire.RouteRead || req.Op != wire.OpBatch || req.Template != "" || len(req.Batch) != n {
			t.Fatalf("batch %d: key %s, %+v", n, key, req)
		}
		for i, it := range req.Batch {
			var f struct{ ID int64 }
			if err := json.Unmarshal(it.Filter, &f); err != nil || it.Op != wire.OpRead || it.Template != "users" || !slices.Contains(keys, f.ID) {
				t.Errorf("batch %d item %d: %+v %s %v", n, i, it, it.Filter, err)
			}
		}
		if got := w.OpsPerMessage(Batch); got != n {
			t.Errorf("batch %d counts %d operations", n, got)
		}
	}

	w := &Workload{Template: "users", Keys: keys, Children: 4}
	key, body, err := w.body(Include, r, "beds1.3", 42)
	if err != nil {
		t.Fatal(err)
	}
	req, err := wire.DecodeRequest(body)
	if err != nil {
		t.Fatalf("include: %v\n%s", err, body)
	}
	var f struct{ ID int64 }
	if err := json.Unmarshal(req.Filter, &f); err != nil || key != req.RoutingKey() || req.Op != wire.OpRead || req.Template != "users" ||
		!slices.Equal(req.Include, []string{"orders"}) || !slices.Contains(keys, f.ID) {
		t.Errorf("include: key %s, %s", key, body)
	}

	// 30 records with 4 children each: 120 creates in batches of 50.
	var parents []int64
	for k := range int64(30) {
		parents = append(parents, 100+k)
	}
	bodies := w.childSeedBodies(parents)
	if len(bodies) != 3 {
		t.Fatalf("%d seeding messages, want 3", len(bodies))
	}
	perParent := map[int64]int{}
	for i, b := range bodies {
		req, err := wire.DecodeRequest(b)
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", i, err, b)
		}
		if want := []int{50, 50, 20}[i]; req.Op != wire.OpBatch || len(req.Batch) != want || req.RoutingKey() != wire.RouteWrite {
			t.Fatalf("seed %d: %d items, want %d: %s", i, len(req.Batch), want, b)
		}
		for _, it := range req.Batch {
			var d struct {
				User  int64
				Total float64
			}
			if err := json.Unmarshal(it.Data, &d); err != nil || it.Template != "orders" || it.Op != wire.OpCreate || d.Total != 1.5 {
				t.Fatalf("seed %d item: %+v %s", i, it, it.Data)
			}
			perParent[d.User]++
		}
	}
	for _, k := range parents {
		if perParent[k] != 4 {
			t.Errorf("record %d has %d children, want 4", k, perParent[k])
		}
	}
	if len(perParent) != len(parents) {
		t.Errorf("children of %d records, want %d", len(perParent), len(parents))
	}
	req, err = wire.DecodeRequest(w.childCleanupBody([]int64{3, 4}))
	if err != nil || req.Template != "orders" || req.Op != wire.OpDelete || string(req.Filter) != `{"user":{"in":[3,4]}}` {
		t.Errorf("child cleanup: %+v %s %v", req, req.Filter, err)
	}
}

// TestOpsPerSecond checks database operations are counted per message
// kind and compared with the baseline's point reads.
func TestOpsPerSecond(t *testing.T) {
	w := &Workload{Batch: 16}
	for _, tc := range []struct {
		p    picker
		want int
	}{
		{newPicker(PointRead, nil), 1},
		{newPicker(Update, nil), 1},
		{newPicker(Batch, nil), 16},
		{newPicker(Include, nil), 2},
		{newPicker(Mixed, Mix{PointRead: 1, Create: 1}), 1},
	} {
		if got := tc.p.opsPerMessage(w); got != tc.want {
			t.Errorf("%v: %d operations per message, want %d", tc.p.ops, got, tc.want)
		}
	}

	res := func(n int64) *loadResult { return &loadResult{n: n, elapsed: 2 * time.Second} }
	none := cpuSample{server: -1}
	var runs []Run
	for round := 1; round <= 3; round++ {
		for _, size := range []int{1, 16} {
			// 1000, 1100, 1200 messages in 2 s: a median of 550/s.
			r := makeRun(TargetBEDS, round, size, res(int64(900+100*round)), none, none)
			r.Batch = size
			runs = append(runs, r)
		}
		runs = append(runs, makeRun(TargetBaseline, round, 1, res(int64(1800+200*round)), none, none))
	}
	if r := runs[1]; r.TPS != 500 || r.OpsPerMsg != 16 || r.OpsPerSec != 8000 {
		t.Errorf("run of batch 16: %.0f msgs/s, %d ops/msg, %.0f ops/s; want 500, 16, 8000", r.TPS, r.OpsPerMsg, r.OpsPerSec)
	}
	base := summarize(runs, TargetBaseline, 0)
	one := summarize(runs, TargetBEDS, 1)
	sixteen := summarize(runs, TargetBEDS, 16)
	if base.Runs != 3 || base.OpsPerSec != 1100 || one.Runs != 3 || one.OpsPerSec != 550 || sixteen.OpsPerSec != 16*550 {
		t.Fatalf("medians: baseline %d runs %.0f ops/s, batch 1 %d runs %.0f, batch 16 %.0f",
			base.Runs, base.OpsPerSec, one.Runs, one.OpsPerSec, sixteen.OpsPerSec)
	}
	if rt := ratios(&sixteen, &base); rt.Ops != 8 || rt.TPS != 0.5 {
		t.Errorf("batch 16 / baseline: ops %.2fx, tp/s %.2fx; want 8, 0.5", rt.Ops, rt.TPS)
	}
	if rt := ratios(&one, &base); rt.Ops != 0.5 {
		t.Errorf("batch 1 / baseline: ops %.2fx, want 0.5", rt.Ops)
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		batch    []int
		children int
		bad      bool
	}{
		{name: "batch of 16 by default", cfg: Config{Op: Batch}, batch: []int{16}},
		{name: "batch sizes kept", cfg: Config{Op: Batch, Batch: []int{1, 64}}, batch: []int{1, 64}},
		{name: "batch size 0", cfg: Config{Op: Batch, Batch: []int{0}}, bad: true},
		{name: "batch size past the contract", cfg: Config{Op: Batch, Batch: []int{10001}}, bad: true},
		{name: "sizes without batch", cfg: Config{Op: PointRead, Batch: []int{4}}, bad: true},
		{name: "4 children by default", cfg: Config{Op: Include}, children: 4},
		{name: "children kept", cfg: Config{Op: Include, Children: 24}, children: 24},
		{name: "too many children", cfg: Config{Op: Include, Children: MaxChildren + 1}, bad: true},
		{name: "children without include", cfg: Config{Op: PointRead, Children: 4}, bad: true},
		{name: "neither", cfg: Config{Op: PointRead}},
		{name: "delete seed without delete", cfg: Config{Op: Update, DeleteSeed: 10}, bad: true},
		{name: "negative delete seed", cfg: Config{Op: Delete, DeleteSeed: -1}, bad: true},
		{name: "against a template with a session", cfg: Config{Op: PointRead, Session: "t", Against: "users_open"}},
		{name: "against the measured template without a session", cfg: Config{Op: PointRead, Against: "users"}, bad: true},
		{name: "against and baseline", cfg: Config{Op: PointRead, Session: "t", Against: "users_open", Baseline: &BaselineConfig{}}, bad: true},
		{name: "against a write", cfg: Config{Op: Create, Session: "t", Against: "users_open"}, bad: true},
	} {
		err := tc.cfg.defaults()
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
			}
			continue
		}
		if err != nil || !slices.Equal(tc.cfg.Batch, tc.batch) || tc.cfg.Children != tc.children || tc.cfg.DeleteSeed != 0 {
			t.Errorf("%s: batch %v children %d delete seed %d %v, want %v %d 0", tc.name, tc.cfg.Batch, tc.cfg.Children, tc.cfg.DeleteSeed, err, tc.batch, tc.children)
		}
	}
}

// TestDeleteSeedDefault checks the records seeded per target for deletes
// cover every round's warmup and measured run: by request count exactly,
// by duration at DeleteRate.
func TestDeleteSeedDefault(t *testing.T) {
	base := &BaselineConfig{}
	for _, tc := range []struct {
		name string
		cfg  Config
		want int
	}{
		{"requests, no warmup, one round", Config{Requests: 100}, 100},
		{"requests, no warmup, three rounds with a baseline", Config{Requests: 100, Baseline: base}, 300},
		{"requests and a warmup", Config{Requests: 100, Warmup: 500 * time.Millisecond, Rounds: 2}, 2 * (100 + DeleteRate/2)},
		{"duration and a warmup", Config{Duration: 8 * time.Second, Warmup: 2 * time.Second, Rounds: 3}, 3 * 10 * DeleteRate},
		{"the default duration", Config{}, 10 * DeleteRate},
		{"a fraction of a request rounds up", Config{Duration: time.Millisecond / 10}, 1},
		{"given", Config{Requests: 100, DeleteSeed: 7}, 7},
	} {
		tc.cfg.Op = Delete
		if err := tc.cfg.defaults(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.cfg.DeleteSeed != tc.want {
			t.Errorf("%s: delete seed %d, want %d", tc.name, tc.cfg.DeleteSeed, tc.want)
		}
	}
}

// TestKeyPool checks concurrent clients get every seeded key once, and
// an error, not a key, once all are taken.
func TestKeyPool(t *testing.T) {
	const n, clients = 1000, 8
	keys := make([]int64, n)
	for i := range keys {
		keys[i] = int64(100 + i)
	}
	p := newKeyPool(keys)
	got := make([][]int64, clients)
	errs := make([]int, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for range n/clients + 10 { // more than the pool, in all
				k, err := p.take()
				if err != nil {
					if !errors.Is(err, errUsedUp) {
						t.Errorf("take: %v", err)
					}
					errs[c]++
					continue
				}
				got[c] = append(got[c], k)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if !slices.Equal(all, keys) {
		t.Errorf("took %d keys, %d distinct, want each of %d once", len(all), len(slices.Compact(slices.Clone(all))), n)
	}
	failed := 0
	for _, e := range errs {
		failed += e
	}
	if failed != clients*10 {
		t.Errorf("%d takes failed, want %d", failed, clients*10)
	}
	if _, err := p.take(); !errors.Is(err, errUsedUp) {
		t.Errorf("take after all: %v, want errUsedUp", err)
	}
	if _, err := (*keyPool)(nil).take(); !errors.Is(err, errUsedUp) {
		t.Errorf("take from no pool: %v, want errUsedUp", err)
	}
	if _, err := newKeyPool(nil).take(); !errors.Is(err, errUsedUp) {
		t.Errorf("take from an empty pool: %v, want errUsedUp", err)
	}
}

// TestDeleteBodies checks a delete is a delete by key of a pooled key,
// each key once, until the pool is used up; and the batches seeding a
// target's deletes.
func TestDeleteBodies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w := &Workload{Template: "users", RunID: "bench-ab12", Keys: []int64{1}, Payload: payload(20),
		deletes: newKeyPool([]int64{41, 42, 43})}
	for _, want := range []string{`{"id":41}`, `{"id":42}`, `{"id":43}`} {
		key, body, err := w.body(Delete, r, "t", 1)
		if err != nil {
			t.Fatal(err)
		}
		req, err := wire.DecodeRequest(body)
		if err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		if key != wire.RouteWrite || req.RoutingKey() != key || req.Op != wire.OpDelete || req.Template != "users" || string(req.Filter) != want || len(req.Data) != 0 {
			t.Errorf("delete: key %s, %s; want filter %s", key, body, want)
		}
		var b bReq
		if err := json.Unmarshal(body, &b); err != nil || b.Op != "delete" || string(b.Filter.ID) != strings.Trim(want, `{}"id:`) {
			t.Errorf("baseline reads %+v from %s (%v)", b, body, err)
		}
	}
	if _, body, err := w.body(Delete, r, "t", 1); !errors.Is(err, errUsedUp) || body != nil {
		t.Errorf("a fourth delete of three keys: %s, %v", body, err)
	}
	if got := w.OpsPerMessage(Delete); got != 1 {
		t.Errorf("a delete counts %d operations", got)
	}
	if newPicker(Delete, nil).needsSeed() {
		t.Error("delete seeds the records for reads")
	}

	// 120 records: batches of 50, 50 and 20 creates, emails under the tag.
	bodies := w.deleteSeedBodies("dbeds", 120)
	if len(bodies) != 3 {
		t.Fatalf("%d seeding messages, want 3", len(bodies))
	}
	i := 0
	for m, b := range bodies {
		req, err := wire.DecodeRequest(b)
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", m, err, b)
		}
		if want := []int{50, 50, 20}[m]; req.Op != wire.OpBatch || len(req.Batch) != want || req.RoutingKey() != wire.RouteWrite {
			t.Fatalf("seed %d: %d items, want %d: %s", m, len(req.Batch), want, b)
		}
		for _, it := range req.Batch {
			var d struct{ Email, Name string }
			if err := json.Unmarshal(it.Data, &d); err != nil || it.Template != "users" || it.Op != wire.OpCreate ||
				d.Email != fmt.Sprintf("bench-ab12-dbeds-%d@bench.invalid", i) || d.Name != w.Payload {
				t.Fatalf("seed %d item %d: %+v %s", m, i, it, it.Data)
			}
			i++
		}
	}
	if len(w.deleteSeedBodies("dbase", 0)) != 0 {
		t.Error("messages to seed no record")
	}
}

// TestRecordBodies checks --record puts "record": true on every kind of
// measured request, and only with it.
func TestRecordBodies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, record := range []bool{false, true} {
		w := &Workload{Template: "users", RunID: "bench-ab12", Keys: []int64{7}, Batch: 2, Record: record, Payload: "x",
			deletes: newKeyPool([]int64{7})}
		for _, op := range []Op{PointRead, FilteredRead, Create, Update, Delete, Batch, Include} {
			_, body, err := w.body(op, r, "t", 1)
			if err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			req, err := wire.DecodeRequest(body)
			if err != nil {
				t.Fatalf("%s record=%v: %v\n%s", op, record, err, body)
			}
			if req.Record != record {
				t.Errorf("%s: record %v, want %v", op, req.Record, record)
			}
		}
	}
}

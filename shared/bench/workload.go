package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/beds-project/beds/shared/wire"
)

// Op is a kind of request the load generator sends.
type Op string

// The request kinds. Every one is a request of the wire contract on a
// template shaped like users (fields id, email, name, age, active, prefs).
// Each counts as one database operation, except Batch and Include
// (Workload.OpsPerMessage).
const (
	// PointRead reads one seeded record by key:
	// {"op":"read","filter":{"id":K}}.
	PointRead Op = "point-read"
	// FilteredRead reads up to 10 seeded records by a key range and an
	// email prefix, sorted by key:
	// {"filter":{"email":{"like":"RUN-%"},"id":{"gte":K}},"sort":["id"],"limit":10}.
	FilteredRead Op = "filtered-read"
	// Create makes a record with a unique email under the run's prefix.
	Create Op = "create"
	// Update sets the name (or, above 200 bytes, prefs) of a seeded record
	// by key to a value of its own: every update changes its row.
	Update Op = "update"
	// Delete deletes one record by key:
	// {"op":"delete","filter":{"id":K}}. A delete removes its record, so
	// each target deletes records seeded for its deletes alone
	// (Config.DeleteSeed), each key once, and a run that has used them
	// all stops with an error rather than measure not_found replies.
	Delete Op = "delete"
	// Mixed draws each request from a Mix.
	Mixed Op = "mixed"
	// Batch reads Workload.Batch seeded records by key in one message:
	// {"op":"batch","batch":[{"template":T,"op":"read","filter":{"id":K}}, ...]}. It
	// counts as Workload.Batch database operations.
	Batch Op = "batch"
	// Include reads one seeded record by key with its orders:
	// {"op":"read","filter":{"id":K},"include":["orders"]}. The seed gives
	// every record Workload.Children orders (ChildTemplate, related to the
	// users-shaped template as Relation). It counts as two database
	// operations: the record's read and its relation's one child query.
	Include Op = "include"
)

// The child records Include reads, shaped like the shipped orders template
// (fields id, user, total, status, placed) and related to the users-shaped
// template by the REL template user_orders.
const (
	// ChildTemplate is the template of the children seeded for Include.
	ChildTemplate = "orders"
	// ChildKey is ChildTemplate's field holding its parent's key.
	ChildKey = "user"
	// Relation is the name Include reads the children under.
	Relation = "orders"
)

// MaxChildren bounds --children: the children of one record are deleted
// by one request, which the node's max_affected bounds (1000 by default).
const MaxChildren = 100

// seedBatch is how many creates one seeding message carries.
const seedBatch = 50

// Ops lists the request kinds a Mix may hold.
var Ops = []Op{PointRead, FilteredRead, Create, Update}

// ParseOp parses --op.
func ParseOp(s string) (Op, error) {
	switch op := Op(s); op {
	case PointRead, FilteredRead, Create, Update, Delete, Mixed, Batch, Include:
		return op, nil
	}
	return "", fmt.Errorf("unknown op %q: one of point-read, filtered-read, create, update, delete, mixed, batch, include", s)
}

// ParseBatchSizes parses --batch: one size, or a comma-separated list run
// in turn ("1,4,16,64"). Each size is 1..wire.MaxBatch, named once.
func ParseBatchSizes(s string) ([]int, error) {
	var sizes []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > wire.MaxBatch {
			return nil, fmt.Errorf("batch size %q: want an integer 1..%d", strings.TrimSpace(part), wire.MaxBatch)
		}
		if slices.Contains(sizes, n) {
			return nil, fmt.Errorf("batch size %d named twice", n)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// needsSeed reports whether op reads or changes the records seeded for
// reads and updates (Delete has records of its own: Workload.deletes).
func (op Op) needsSeed() bool {
	switch op {
	case PointRead, FilteredRead, Update, Batch, Include:
		return true
	}
	return false
}

// countsOps reports whether op's messages carry other than one database
// operation each, so that a report shows operations per second apart
// from messages per second.
func (op Op) countsOps() bool { return op == Batch || op == Include }

// Mix is the weight of each request kind.
type Mix map[Op]int

// ParseMix parses --mix: "read=80,create=10,update=10". Keys are the op
// names or the short forms read (point-read) and filtered (filtered-read);
// weights are non-negative integers and at least one must be positive.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("mix entry %q: want op=weight", part)
		}
		var op Op
		switch k = strings.TrimSpace(k); k {
		case "read", "point-read", "point":
			op = PointRead
		case "filtered", "filtered-read":
			op = FilteredRead
		case "create":
			op = Create
		case "update":
			op = Update
		default:
			return nil, fmt.Errorf("mix entry %q: unknown op %q (read, filtered, create, update)", part, k)
		}
		w, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || w < 0 {
			return nil, fmt.Errorf("mix entry %q: weight must be a non-negative integer", part)
		}
		if _, dup := m[op]; dup {
			return nil, fmt.Errorf("mix names %s twice", op)
		}
		m[op] = w
	}
	total := 0
	for _, w := range m {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix %q has no positive weight", s)
	}
	return m, nil
}

// String writes the mix in ParseMix's form, in a fixed order.
func (m Mix) String() string {
	var parts []string
	for _, op := range Ops {
		if w, ok := m[op]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", op, w))
		}
	}
	return strings.Join(parts, ",")
}

// picker draws request kinds by weight.
type picker struct {
	ops []Op
	cum []int
}

func newPicker(op Op, m Mix) picker {
	if op != Mixed {
		return picker{ops: []Op{op}, cum: []int{1}}
	}
	var p picker
	total := 0
	for _, o := range Ops {
		if w := m[o]; w > 0 {
			total += w
			p.ops = append(p.ops, o)
			p.cum = append(p.cum, total)
		}
	}
	return p
}

func (p picker) pick(r *rand.Rand) Op {
	if len(p.ops) == 1 {
		return p.ops[0]
	}
	n := r.IntN(p.cum[len(p.cum)-1])
	i, _ := slices.BinarySearch(p.cum, n+1)
	return p.ops[i]
}

func (p picker) needsSeed() bool { return slices.ContainsFunc(p.ops, Op.needsSeed) }

func (p picker) creates() bool { return slices.Contains(p.ops, Create) }

// opsPerMessage is the database operations of one request p picks: a
// mix's kinds all count one.
func (p picker) opsPerMessage(w *Workload) int {
	if len(p.ops) != 1 {
		return 1
	}
	return w.OpsPerMessage(p.ops[0])
}

// Workload builds request bodies. It is read-only once built and shared by
// every client; each client passes its own random source and counter.
type Workload struct {
	Template string
	RunID    string  // prefix of every email the run writes; no _ or %
	Keys     []int64 // seeded records
	Payload  string  // the string written by create and update
	Batch    int     // reads per Batch message
	Children int     // ChildTemplate records seeded per record, for Include
	Record   bool    // every measured request says "record": true

	// deletes hands out the keys Delete deletes: records seeded for one
	// target, each deleted once. Each target has its own.
	deletes *keyPool
}

// errUsedUp is keyPool.take's error once every key was handed out.
var errUsedUp = errors.New("every record seeded for the deletes is used")

// keyPool hands out the keys of the records seeded to be deleted, each
// key once, to any number of clients.
type keyPool struct {
	keys []int64
	next atomic.Int64 // the index of the next key to hand out
}

func newKeyPool(keys []int64) *keyPool { return &keyPool{keys: keys} }

// take returns a key no caller was given before, or errUsedUp.
func (p *keyPool) take() (int64, error) {
	if p == nil {
		return 0, errUsedUp
	}
	i := p.next.Add(1) - 1
	if i >= int64(len(p.keys)) {
		return 0, errUsedUp
	}
	return p.keys[i], nil
}

// size is how many keys the pool holds in all.
func (p *keyPool) size() int {
	if p == nil {
		return 0
	}
	return len(p.keys)
}

// open starts a measured request's body.
func (w *Workload) open(b []byte) []byte {
	if w.Record {
		return append(b, `{"record":true,`...)
	}
	return append(b, '{')
}

// batchRoute is the routing key of a batch of reads.
var batchRoute = (&wire.Request{Op: wire.OpBatch, Batch: []wire.Request{{Op: wire.OpRead}}}).RoutingKey()

// OpsPerMessage is how many database operations one message of kind op
// asks for: a Batch's reads, an Include's read and child query, one for
// any other.
func (w *Workload) OpsPerMessage(op Op) int {
	switch op {
	case Batch:
		return max(w.Batch, 1)
	case Include:
		return 2
	}
	return 1
}

// body returns the routing key and the body of one request of kind op.
// tag makes create emails unique: the phase, the client and its counter.
// Its one error is a Delete's errUsedUp: no record is left to delete.
func (w *Workload) body(op Op, r *rand.Rand, tag string, n int64) (string, []byte, error) {
	if op == Batch {
		n := max(w.Batch, 1)
		b := make([]byte, 0, 40+n*(48+len(w.Template)))
		b = append(w.open(b), `"op":"batch","batch":[`...)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"template":`...)
			b = strconv.AppendQuote(b, w.Template)
			b = w.appendPointRead(b, r)
		}
		return batchRoute, append(b, "]}"...), nil
	}
	b := make([]byte, 0, 112+len(w.Payload))
	b = append(w.open(b), `"template":`...)
	b = strconv.AppendQuote(b, w.Template)
	switch op {
	case PointRead:
		return wire.RouteRead, w.appendPointRead(b, r), nil
	case Include:
		b = append(b, `,"op":"read","filter":{"id":`...)
		b = strconv.AppendInt(b, w.key(r), 10)
		b = append(b, `},"include":[`...)
		b = strconv.AppendQuote(b, Relation)
		b = append(b, "]}"...)
		return wire.RouteRead, b, nil
	case FilteredRead:
		b = append(b, `,"op":"read","filter":{"email":{"like":`...)
		b = strconv.AppendQuote(b, w.RunID+"-%")
		b = append(b, `},"id":{"gte":`...)
		b = strconv.AppendInt(b, w.key(r), 10)
		b = append(b, `}},"sort":["id"],"limit":10}`...)
		return wire.RouteRead, b, nil
	case Create:
		return wire.RouteWrite, w.appendCreate(b, tag, n), nil
	case Update:
		b = append(b, `,"op":"update","filter":{"id":`...)
		b = strconv.AppendInt(b, w.key(r), 10)
		b = append(b, `},"data":{`...)
		b = w.appendPayload(b, false, tag+"-"+strconv.FormatInt(n, 10)+"-")
		b = append(b, "}}"...)
		return wire.RouteWrite, b, nil
	case Delete:
		k, err := w.deletes.take()
		if err != nil {
			return "", nil, err
		}
		b = append(b, `,"op":"delete","filter":{"id":`...)
		b = strconv.AppendInt(b, k, 10)
		return wire.RouteWrite, append(b, "}}"...), nil
	}
	panic("bench: no body for op " + string(op))
}

// appendCreate appends the rest of a create after its template, with a
// unique email under the run's prefix made of tag and n:
// ,"op":"create","data":{"email":"RUN-tag-n@bench.invalid",...}}.
func (w *Workload) appendCreate(b []byte, tag string, n int64) []byte {
	b = append(b, `,"op":"create","data":{"email":`...)
	b = strconv.AppendQuote(b, w.RunID+"-"+tag+"-"+strconv.FormatInt(n, 10)+"@bench.invalid")
	b = w.appendPayload(b, true, "")
	b = append(b, `,"age":`...)
	b = strconv.AppendInt(b, n%100, 10)
	return append(b, `,"active":true}}`...)
}

// appendPointRead appends the rest of a point read after its template:
// ,"op":"read","filter":{"id":K}}.
func (w *Workload) appendPointRead(b []byte, r *rand.Rand) []byte {
	b = append(b, `,"op":"read","filter":{"id":`...)
	b = strconv.AppendInt(b, w.key(r), 10)
	return append(b, "}}"...)
}

// appendPayload appends the payload as the name field, or as prefs
// {"pad": ...} when it is longer than name's 200 bytes, with its head
// replaced by uniq (uniq alone when it is longer than the payload). An
// update passes a uniq of its own (its client's tag and number), so that
// every update changes its row: one that stores what the row already
// holds changes nothing, and MariaDB commits it without writing or
// syncing its log, which would make the baseline's updates no-ops beside
// BEDS's, whose event record is always a write.
func (w *Workload) appendPayload(b []byte, comma bool, uniq string) []byte {
	if comma {
		b = append(b, ',')
	}
	v := w.Payload
	if uniq != "" {
		v = uniq + v[min(len(uniq), len(v)):]
	}
	if len(v) <= 200 {
		b = append(b, `"name":`...)
		b = strconv.AppendQuote(b, v)
		return b
	}
	b = append(b, `"prefs":{"pad":`...)
	b = strconv.AppendQuote(b, v)
	return append(b, '}')
}

func (w *Workload) key(r *rand.Rand) int64 {
	if len(w.Keys) == 0 {
		return 0
	}
	return w.Keys[r.IntN(len(w.Keys))]
}

// payload returns n bytes of printable ASCII.
func payload(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[i%len(chars)]
	}
	return string(b)
}

// seedBody is the create request of seeded record i.
func (w *Workload) seedBody(i int) []byte {
	return w.createBody("s", int64(i))
}

func (w *Workload) createBody(tag string, n int64) []byte {
	_, b, _ := w.body(Create, nil, tag, n)
	return b
}

// cleanupPage reads the keys of up to n records whose email starts with
// prefix: a delete by those keys stays within the node's max_affected,
// which a delete by the prefix would pass after a create run.
func (w *Workload) cleanupPage(prefix string, n int) []byte {
	f, _ := json.Marshal(map[string]any{"email": map[string]string{"like": prefix + "%"}})
	b, _ := json.Marshal(wire.Request{Template: w.Template, Op: wire.OpRead, Filter: f, Fields: []string{"id"}, Limit: n})
	return b
}

// cleanupBody deletes the records of keys.
func (w *Workload) cleanupBody(keys []any) []byte {
	f, _ := json.Marshal(map[string]any{"id": map[string][]any{"in": keys}})
	b, _ := json.Marshal(wire.Request{Template: w.Template, Op: wire.OpDelete, Filter: f})
	return b
}

// createBatches are the batch messages of n creates, at most seedBatch
// per message, in order: create i is the (i%seedBatch)th item of message
// i/seedBatch. item appends create i, a request object, to b.
func createBatches(n, size int, item func(b []byte, i int) []byte) [][]byte {
	var out [][]byte
	for first := 0; first < n; first += seedBatch {
		b := append(make([]byte, 0, 32+size*min(seedBatch, n-first)), `{"op":"batch","batch":[`...)
		for i := first; i < min(first+seedBatch, n); i++ {
			if i > first {
				b = append(b, ',')
			}
			b = item(b, i)
		}
		out = append(out, append(b, "]}"...))
	}
	return out
}

// childSeedBodies are the batches of creates that give every record of
// keys w.Children children, at most seedBatch creates per message.
func (w *Workload) childSeedBodies(keys []int64) [][]byte {
	return createBatches(len(keys)*w.Children, 64, func(b []byte, i int) []byte {
		b = append(b, `{"template":`...)
		b = strconv.AppendQuote(b, ChildTemplate)
		b = append(b, `,"op":"create","data":{`...)
		b = strconv.AppendQuote(b, ChildKey)
		b = append(b, ':')
		b = strconv.AppendInt(b, keys[i/w.Children], 10)
		return append(b, `,"total":1.5}}`...)
	})
}

// deleteSeedBodies are the batches of creates of the n records one
// target's deletes delete, at most seedBatch creates per message: records
// like the seeded ones, their emails under the run's prefix and tag, so
// that the run's cleanup removes those left.
func (w *Workload) deleteSeedBodies(tag string, n int) [][]byte {
	return createBatches(n, 112+len(w.Payload), func(b []byte, i int) []byte {
		b = append(b, `{"template":`...)
		b = strconv.AppendQuote(b, w.Template)
		return w.appendCreate(b, tag, int64(i))
	})
}

// childCleanupBody deletes every child of the records of keys.
func (w *Workload) childCleanupBody(keys []int64) []byte {
	f, _ := json.Marshal(map[string]any{ChildKey: map[string][]int64{"in": keys}})
	b, _ := json.Marshal(wire.Request{Template: ChildTemplate, Op: wire.OpDelete, Filter: f})
	return b
}

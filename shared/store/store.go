package store

import (
	"context"
	"fmt"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Store runs queries against one database. Implementations are safe for
// concurrent use.
//
// Exec returns a *wire.Error for outcomes the contract names (conflict,
// not_found, unavailable, timeout, bad_value from a procedure's own check)
// and any other error for a failure the node should log and answer as
// internal.
//
// A Store may also implement schema.Checker (package schema): then the
// IPL's schema step and bedsctl schema check compare its database with the
// templates it serves.
type Store interface {
	Exec(ctx context.Context, q *Query) (*Result, error)
	// Ping checks the store answers; it is the readiness probe.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Batcher is a Store that can apply several writes in one transaction:
// all of them or none. ExecBatch records the whole batch under event, so
// a batch delivered again is answered from its record (each Result
// Replayed) and applies nothing a second time; each query keeps its own
// event ID (event.1, event.2, ...) for its own record. A write that fails
// rolls every write back and comes back as a *BatchError naming it.
type Batcher interface {
	ExecBatch(ctx context.Context, event string, writes []*Query) ([]*Result, error)
}

// BatchError is the failure of one write of a batch.
type BatchError struct {
	Index int // position of the failed write in the writes given to ExecBatch
	Err   error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("write %d of the batch: %v", e.Index+1, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Result is what a query produced.
type Result struct {
	Rows     []wire.Row // read
	Count    int64      // count, and the number of rows of a read
	Affected int64      // create, update, delete
	Key      any        // the key of the record a create made
	// Replayed is true when the write had already been applied under the
	// same event ID and this result is the first delivery's.
	Replayed bool
}

// Operator is a filter operator of the contract.
type Operator string

// The closed set of filter operators.
const (
	OpEq   Operator = "eq"
	OpNe   Operator = "ne"
	OpGt   Operator = "gt"
	OpGte  Operator = "gte"
	OpLt   Operator = "lt"
	OpLte  Operator = "lte"
	OpIn   Operator = "in"
	OpNin  Operator = "nin"
	OpLike Operator = "like"
	OpNull Operator = "null"
)

// Expr is a node of a filter: a condition, or an and/or of expressions.
type Expr struct {
	And  []*Expr
	Or   []*Expr
	Cond *Cond
}

// Cond is one condition on one field.
//
// Value holds the field's Go type (string, int64, float64, bool,
// time.Time, or a decoded JSON value); for in and nin it is a []any of
// those; for null it is a bool (true: is null); eq and ne may hold nil,
// meaning is null and is not null.
type Cond struct {
	Field *template.Field
	Op    Operator
	Value any
}

// Sort is one sort key.
type Sort struct {
	Field *template.Field
	Desc  bool
}

// Assign sets one field in a create or update.
type Assign struct {
	Field *template.Field
	Value any // the field's Go type, or nil
}

// Query is a validated request, ready for an adapter.
type Query struct {
	Event    string // event ID; the idempotency key of a write
	Template *template.Template
	Op       wire.Op
	Filter   *Expr // nil: every record
	Fields   []*template.Field
	Sort     []Sort
	Limit    int // always set for a read, at most Limits.MaxLimit
	Offset   int
	Data     []Assign // create, update: in the template's declaration order
	// MaxAffected bounds an update or delete: one that matches more
	// records changes nothing and fails with too_large. Adapters enforce
	// it; 0 means no bound.
	MaxAffected int
}

// Limits bound what one request may ask for.
type Limits struct {
	DefaultLimit     int // rows a read returns when the request sets no limit
	MaxLimit         int // a larger limit is reduced to this
	MaxOffset        int // a larger offset is too_large
	MaxInList        int // values in one in/nin list
	MaxDepth         int // nesting of and/or
	MaxSort          int // sort keys
	MaxAffected      int // records one update or delete may change (Query.MaxAffected)
	MaxLikeLength    int // characters of one like pattern
	MaxLikeWildcards int // % and _ in one like pattern
	MaxBatch         int // requests in one batch
	MaxInclude       int // include paths of one read
	MaxIncludeDepth  int // relations in one include path (orders.items is 2)
	MaxIncludeRows   int // rows one relation of an include may fetch for a read
	MaxOperations    int // database operations one request may fan out to in all
	MaxRows          int // rows one request may read in all its operations
}

// DefaultLimits are the limits a node uses unless configured.
var DefaultLimits = Limits{DefaultLimit: 100, MaxLimit: 1000, MaxOffset: 100000, MaxInList: 1000, MaxDepth: 8, MaxSort: 8,
	MaxAffected: 1000, MaxLikeLength: 200, MaxLikeWildcards: 10,
	MaxBatch: 100, MaxInclude: 8, MaxIncludeDepth: 3, MaxIncludeRows: 1000,
	MaxOperations: 256, MaxRows: 10000}

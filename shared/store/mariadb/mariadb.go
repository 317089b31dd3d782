// Package mariadb is the store adapter for MariaDB. (Not MySQL, which has
// neither SET STATEMENT ... FOR, used below, nor CREATE OR REPLACE
// PROCEDURE, used by the deploy scripts.)
//
// It reaches data only through DBA-owned objects named by the template:
// reads and counts select from the template's view, writes CALL its stored
// procedures. Identifiers come from validated templates and are quoted;
// every value is a bound parameter; filter operators map to fixed SQL
// tokens. Nothing from a request is ever spliced into a statement.
//
// Calling convention: each procedure takes the parameters
// [template.Template.Params] lists for its operation, by default the
// writable fields for create, the key then the writable fields for update,
// and the key for delete, after the request's event ID (beds_event), and
// an update's after the names of the fields the request sets too
// (beds_set, comma-separated; the parameters of the others are NULL).
// Each writes, and records the event with its own insert into beds_events
// (or through BEDS's procedure beds_record, which inserts the same row:
// deploy/mariadb/000_beds.sql), all in a transaction it begins and
// commits itself, unless a caller's transaction holds the call (BEDS's or
// a batch's: then in that one); a NULL event records nothing. A create
// inserts the row, records the event with its key and may return the
// key as the first column of a result set. An update locks the row of the
// key and changes the columns beds_set names (the merge is the
// procedure's: IF(FIND_IN_SET(...))); a delete deletes the row of the
// key; each records the event with the rows it matched and returns that
// count as the first column of a result set, none being not_found. So a
// create, and an update or delete whose filter is the key's equality, is
// one statement, CALL, one round trip; the procedures hold no other
// COMMIT or ROLLBACK (idempotency.go says why).
// An update or delete by another filter (and a delete whose procedure
// takes more than the key) selects the matching rows through the view
// FOR UPDATE (an update their keys, a delete its procedure's parameters),
// then calls the procedure once per row with a NULL event, and BEDS
// records the event, all in one transaction; one that matches more than
// [store.Query.MaxAffected] rows changes nothing and answers too_large. A
// SIGNAL SQLSTATE '45000' in a procedure reaches the caller as bad_value
// with its message.
//
// Every statement carries the request's deadline to the server (SET
// STATEMENT max_statement_time ... FOR), so MariaDB stops what the node
// no longer waits for; see timelimit.go.
//
// The objects of a template can be generated and checked (package schema):
// GenerateSchema writes the table, view and procedures following this
// convention (schemagen.go), and a Store compares its database with the
// templates through information_schema (CheckSchema, schemacheck.go),
// which bedsctl schema check and a node's start-up run.
//
// Reads and counts go to replicas when the store has them and one is fit
// (answers, replicates, lags no more than the bound); everything else,
// and every read no replica can serve, goes to the primary: see
// replicas.go.
//
// Lineage records (package lineage) go to BEDS's own table beds_lineage
// (deploy/mariadb/000_beds.sql), upserted so the latest record of an event
// wins; trees are read from the primary with a recursive query on the
// parent column (lineage.go).
package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/store/mariadb/pool"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Config configures one MariaDB store.
type Config struct {
	// DSN is the primary, in go-sql-driver form: user:pass@tcp(host:3306)/db.
	DSN string
	// Replicas, if any, serve reads and counts (replicas.go).
	Replicas []string
	// MaxLag is how far behind its primary a replica may be and still
	// serve reads (default config.DefaultReplicaMaxLag).
	MaxLag time.Duration
	// Check is how often each replica's health and lag are checked
	// (default config.DefaultReplicaCheck).
	Check time.Duration
	// MaxConns caps open connections per server (default 16).
	MaxConns int
	// Log receives a line when a replica is skipped and when it is back
	// (default slog.Default()).
	Log *slog.Logger

	onCheck func() // tests: called after each round of replica checks
}

// Store is a MariaDB store. It is safe for concurrent use.
type Store struct {
	primary  *sql.DB
	multi    bool       // primary sends several statements in one round trip
	reads    *stmtCache // prepared reads and counts on the primary
	replicas []*replica // serve reads and counts while they qualify
	next     atomic.Uint64
	maxLag   time.Duration
	log      *slog.Logger
	bufs     sync.Pool // *readBuf

	stopWatch context.CancelFunc // ends watchReplicas; nil without replicas
	watchDone chan struct{}      // closed when watchReplicas returns
	onCheck   func()             // tests: called after each round of checks
}

var _ store.Store = (*Store)(nil)

// Open prepares connection pools. It does not dial the primary (Ping
// does); with replicas it starts the goroutine that checks them, which
// Close stops, and reads go to the primary until a check finds a replica
// fit.
func Open(cfg Config) (*Store, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	opts := options(cfg.DSN)
	p, err := pool.Open(cfg.DSN, cfg.MaxConns, opts)
	if err != nil {
		return nil, fmt.Errorf("mariadb primary: %w", err)
	}
	s := newStore(p, pool.Interpolating(cfg.DSN, opts))
	for i, dsn := range cfg.Replicas {
		db, err := pool.Open(dsn, cfg.MaxConns, options(dsn))
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("mariadb replica %d: %w", i+1, err)
		}
		s.replicas = append(s.replicas, newReplica(dsnAddr(dsn, i), db))
	}
	s.maxLag, s.log, s.onCheck = cfg.MaxLag, cfg.Log, cfg.onCheck
	if s.maxLag <= 0 {
		s.maxLag = config.DefaultReplicaMaxLag
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(s.replicas) > 0 {
		check := cfg.Check
		if check <= 0 {
			check = config.DefaultReplicaCheck
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatch, s.watchDone = cancel, make(chan struct{})
		go s.watchReplicas(ctx, check)
	}
	return s, nil
}

// newStore returns a store on an open pool, without replicas. multi says
// the primary sends several statements in one round trip.
func newStore(primary *sql.DB, multi bool) *Store {
	s := &Store{primary: primary, multi: multi, maxLag: config.DefaultReplicaMaxLag, log: slog.Default()}
	s.reads = newStmtCache(primary)
	return s
}

// options binds values client side (one round trip per statement instead
// of prepare, execute and close, and a write's statements joined in two)
// unless the DSN says interpolateParams= itself: interpolateParams=false
// keeps server-side binding, and a write's statements go one by one.
func options(dsn string) pool.Options {
	return pool.Options{Interpolate: !strings.Contains(dsn, "interpolateParams="), MultiStatements: true}
}

// Ping checks the primary answers and has BEDS's event table. Replicas
// are not pinged: one that does not answer is skipped (replicas.go), and
// a node starts and stays ready without its replicas.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.primary.PingContext(ctx); err != nil {
		return classify(fmt.Errorf("primary: %w", err), nil)
	}
	// Writes need the event record table (idempotency); say so at start-up
	// rather than on the first write.
	if _, err := s.primary.ExecContext(ctx, "SELECT 1 FROM `"+eventsTable+"` LIMIT 0"); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errNoTable {
			return fmt.Errorf("table %s is missing: apply deploy/mariadb/000_beds.sql to this database", eventsTable)
		}
		return classify(fmt.Errorf("primary: %w", err), nil)
	}
	return nil
}

// Close stops the replica checks and closes the pools.
func (s *Store) Close() error {
	if s.stopWatch != nil {
		s.stopWatch()
		<-s.watchDone
	}
	s.reads.close()
	err := s.primary.Close()
	for _, r := range s.replicas {
		r.reads.close()
		err = errors.Join(err, r.db.Close())
	}
	return err
}

// Exec runs q.
func (s *Store) Exec(ctx context.Context, q *store.Query) (*store.Result, error) {
	var res *store.Result
	var err error
	switch q.Op {
	case wire.OpRead:
		res, err = s.read(ctx, q)
	case wire.OpCount:
		res, err = s.count(ctx, q)
	case wire.OpCreate, wire.OpUpdate, wire.OpDelete:
		res, err = s.write(ctx, q)
	default:
		return nil, fmt.Errorf("mariadb: op %s is not a data op", q.Op)
	}
	if err != nil {
		return nil, classify(err, q.Template)
	}
	return res, nil
}

// readBuf is the scratch of one read or count: its statement, its values
// and its scan cells, reused from query to query.
type readBuf struct {
	text []byte
	args []any
	scan scanner
}

func (s *Store) getBuf() *readBuf {
	if rb, ok := s.bufs.Get().(*readBuf); ok {
		return rb
	}
	return &readBuf{text: make([]byte, 0, 256)}
}

func (s *Store) putBuf(rb *readBuf) {
	clear(rb.args) // values of the request
	rb.text, rb.args = rb.text[:0], rb.args[:0]
	s.bufs.Put(rb)
}

func (s *Store) read(ctx context.Context, q *store.Query) (*store.Result, error) {
	rb := s.getBuf()
	defer s.putBuf(rb)
	rb.text = appendReadLimit(rb.text, ctx)
	rb.text, rb.args = appendSelect(rb.text, rb.args, q, q.Fields, false)
	var out []wire.Row
	err := s.onReader(ctx, func(c *stmtCache) error {
		rows, err := c.query(ctx, rb.text, rb.args...)
		if err != nil {
			return err
		}
		out, err = scanRows(rows, q.Fields, &rb.scan)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", q.Template.Objects.Read, err)
	}
	return &store.Result{Rows: out, Count: int64(len(out))}, nil
}

func (s *Store) count(ctx context.Context, q *store.Query) (*store.Result, error) {
	rb := s.getBuf()
	defer s.putBuf(rb)
	rb.text = appendReadLimit(rb.text, ctx)
	rb.text, rb.args = appendCount(rb.text, rb.args, q)
	var n int64
	err := s.onReader(ctx, func(c *stmtCache) error {
		rows, err := c.query(ctx, rb.text, rb.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			if err := rows.Scan(&n); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("count %s: %w", q.Template.Objects.Read, err)
	}
	return &store.Result{Count: n}, nil
}

// call runs the one CALL of a create, or of an update or delete by key
// (byKey), the event ID first: the procedure writes and records the event
// itself (calling convention, package doc). A create's procedure may
// return the new key as the first column of a result set; an update's or
// delete's returns the rows it matched, and none is not_found (it
// recorded nothing).
func (w *session) call(ctx context.Context, q *store.Query) (*store.Result, error) {
	t := q.Template
	params := t.Params(q.Op)
	proc, lead := t.Objects.Create, 1
	switch q.Op {
	case wire.OpUpdate:
		proc, lead = t.Objects.Update, 2
	case wire.OpDelete:
		proc = t.Objects.Delete
	}
	args := make([]any, lead+len(params)) // fields the request leaves out are NULL
	args[0] = q.Event
	if q.Op == wire.OpUpdate {
		args[1] = setList(params, q.Data)
	}
	if q.Op != wire.OpCreate {
		args[lead] = bindValue(t.Key, q.Filter.Cond.Value) // params[0] is the key (package template)
	}
	bindData(args[lead:], params, q.Data)
	rows, err := w.query(ctx, withLimit(ctx, callSQL(proc, len(args))), args...)
	if err != nil {
		return nil, fmt.Errorf("%s via %s: %w", q.Op, proc, err)
	}
	v, err := firstValue(rows)
	if err != nil {
		return nil, fmt.Errorf("%s via %s: %w", q.Op, proc, err)
	}
	if q.Op == wire.OpCreate {
		res := &store.Result{Affected: 1}
		if v != nil {
			res.Key = keyValue(t.Key, v)
		}
		return res, nil
	}
	n, ok := countValue(v)
	if !ok {
		return nil, fmt.Errorf("%s via %s: the procedure answered %v, not the count of rows it matched: it predates the calling convention that passes beds_event first (regenerate it with bedsctl schema gen; see docs/templates.md)", q.Op, proc, v)
	}
	if n == 0 {
		return nil, wire.Errorf(wire.CodeNotFound, "no %s record matches the filter", t.Name)
	}
	return &store.Result{Affected: n}, nil
}

// byKey reports whether q is an update or delete whose filter is its
// key's equality, which its procedure runs by itself in one CALL (call):
// a delete only where the procedure takes the key alone, since the
// others of its parameters are the stored values (change).
func byKey(q *store.Query) bool {
	switch q.Op {
	case wire.OpUpdate:
	case wire.OpDelete:
		if len(q.Template.Params(wire.OpDelete)) != 1 {
			return false
		}
	default:
		return false
	}
	if q.Filter == nil {
		return false
	}
	c := q.Filter.Cond
	return c != nil && c.Field == q.Template.Key && c.Op == store.OpEq && c.Value != nil
}

// setList returns the names of the parameters among params the request's
// data assigns, comma-separated: an update procedure's beds_set, the
// columns it changes (FIND_IN_SET).
func setList(params []*template.Field, data []store.Assign) string {
	var b strings.Builder
	for _, a := range data {
		if !slices.Contains(params, a.Field) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.Field.Name)
	}
	return b.String()
}

// countValue reads a procedure's count of rows, as the driver returns a
// BIGINT: int64 from a prepared statement, text otherwise.
func countValue(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), true
	case []byte:
		n, err := strconv.ParseInt(string(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// change runs an update or delete by filter: select the keys (a delete:
// its parameters) of the matching rows through the view FOR UPDATE, then
// queue the procedure's call once per row, in the session's transaction,
// with no event (BEDS records it, apply); an update's passes the
// request's data with beds_set. It reads at most q.MaxAffected+1 rows, and
// one row more than q.MaxAffected fails the write with too_large before
// any call.
func (w *session) change(ctx context.Context, q *store.Query) (*store.Result, error) {
	t := q.Template
	params := t.Params(q.Op)
	proc, cols, lead := t.Objects.Delete, params, 1
	if q.Op == wire.OpUpdate {
		proc, cols, lead = t.Objects.Update, params[:1], 2 // the key (package template)
	}
	stmt, args := selectSQL(q, cols, true)
	rows, err := w.query(ctx, withLimit(ctx, stmt), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", q.Op, t.Objects.Read, err)
	}
	matched, err := scanValues(rows, cols)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", q.Op, t.Objects.Read, err)
	}
	if len(matched) == 0 {
		return nil, wire.Errorf(wire.CodeNotFound, "no %s record matches the filter", t.Name)
	}
	if q.MaxAffected > 0 && len(matched) > q.MaxAffected {
		// The transaction rolls back: nothing changes and the event is
		// not recorded, so a redelivery is judged afresh.
		return nil, wire.Errorf(wire.CodeTooLarge, "%s matches more than %d %s records; narrow the filter",
			q.Op, q.MaxAffected, t.Name)
	}
	call := withLimit(ctx, callSQL(proc, lead+len(params)))
	var set string
	if q.Op == wire.OpUpdate {
		set = setList(params, q.Data)
	}
	for _, vals := range matched {
		args := make([]any, lead+len(params)) // args[0], the event, NULL: BEDS records it once
		copy(args[lead:], vals)
		if q.Op == wire.OpUpdate {
			args[1] = set
			bindData(args[lead:], params, q.Data)
		}
		w.queue(call, args...)
	}
	return &store.Result{Affected: int64(len(matched))}, nil
}

// bindData sets each procedure parameter the request's data assigns, in
// vals (one per param), to the bound value; the others keep theirs.
func bindData(vals []any, params []*template.Field, data []store.Assign) {
	for _, a := range data {
		for i, f := range params {
			if f == a.Field {
				vals[i] = bindValue(f, a.Value)
			}
		}
	}
}

// firstValue returns the first column of the first row of the first result
// set, if any, and drains every result set so the connection is reusable.
func firstValue(rows *sql.Rows) (any, error) {
	defer rows.Close()
	var v any
	got := false
	for {
		for rows.Next() {
			if got {
				continue
			}
			cols, err := rows.Columns()
			if err != nil {
				return nil, err
			}
			dest := make([]any, len(cols))
			for i := range dest {
				dest[i] = new(any)
			}
			if err := rows.Scan(dest...); err != nil {
				return nil, err
			}
			v, got = *(dest[0].(*any)), true
		}
		if !rows.NextResultSet() {
			break
		}
	}
	return v, rows.Err()
}

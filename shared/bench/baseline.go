package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/store/mariadb/pool"
	"github.com/beds-project/beds/shared/wire"
)

// The statements the MariaDB adapter runs for the users template, byte for
// byte (store/mariadb's TestBaselineWriteStatements and BenchmarkPointRead
// check they still match). The baseline runs exactly these, so the
// database does the same work for both.
const (
	usersCols = "`usr_id`, `usr_email`, `usr_name`, `usr_age`, `usr_score`, `usr_active`, `usr_prefs`, `usr_created`"
	// PointReadSQL is a read filtered by key: {"filter":{"id":K}}.
	PointReadSQL = "SELECT " + usersCols + " FROM `vw_usr` WHERE `usr_id` = ? LIMIT ? OFFSET ?"
	// FilteredReadSQL is FilteredRead's statement.
	FilteredReadSQL = "SELECT " + usersCols + " FROM `vw_usr` WHERE (`usr_email` LIKE ? AND `usr_id` >= ?) ORDER BY `usr_id` LIMIT ? OFFSET ?"
	// CreateSQL is a create: the event ID, then the writable fields in
	// declaration order. The baseline passes NULL as the event ID: the
	// bare create, which records nothing (the adapter passes the event's,
	// and the procedure records it in its own transaction).
	CreateSQL = "CALL `sp_usr_create`(?, ?, ?, ?, ?, ?, ?)"
	// UpdateSQL is an update by key: the event ID, the names of the
	// fields it sets (beds_set), the key, then the writable fields in
	// declaration order, NULL where not set. The baseline passes NULL as
	// the event ID, as for CreateSQL.
	UpdateSQL = "CALL `sp_usr_update`(?, ?, ?, ?, ?, ?, ?, ?, ?)"
	// DeleteSQL is a delete by key: the event ID, then the key. The
	// baseline passes NULL as the event ID, as for CreateSQL.
	DeleteSQL = "CALL `sp_usr_delete`(?, ?)"
)

// Statement modes of the baseline's database access.
const (
	StmtPrepared    = "prepared"    // statements prepared once per connection, reused
	StmtInterpolate = "interpolate" // go-sql-driver interpolateParams=true: one text round trip
	StmtPlain       = "plain"       // the driver's default: prepare, execute, close per query
)

// BaselineConfig configures the baseline RPC server.
type BaselineConfig struct {
	URL   string
	DSN   string
	Queue string
	// Durable declares the queue durable (writes arrive persistent, as on
	// beds.events); otherwise it is transient. It is auto-delete either way.
	Durable bool
	// Confirm waits for RabbitMQ to confirm a write's reply before
	// acknowledging the request, as the dispatcher does.
	Confirm  bool
	Workers  int    // worker goroutines (default 16, the dispatcher's)
	Prefetch int    // unacknowledged deliveries (default 64, the dispatcher's)
	MaxConns int    // database pool (default 16, the adapter's)
	Stmt     string // StmtPrepared (default), StmtInterpolate or StmtPlain
	Log      *slog.Logger
}

// ServeBaseline runs the baseline server until ctx ends: one connection,
// one consumer channel with the dispatcher's prefetch feeding Workers
// goroutines, one channel for replies, manual acks after the reply. Each
// request is decoded into a small struct, runs the adapter's statement
// directly with go-sql-driver, and is answered with a reply of the wire
// contract's shape. ready is called once it consumes.
func ServeBaseline(ctx context.Context, cfg BaselineConfig, ready func()) error {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 64
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	// The adapter's driver configuration; only the binding differs by mode.
	db, err := pool.Open(cfg.DSN, cfg.MaxConns, pool.Options{Interpolate: cfg.Stmt == StmtInterpolate})
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	defer db.Close()
	s := &baseline{db: db}
	if err := s.prepare(ctx, cfg.Stmt); err != nil {
		return err
	}
	defer s.closeStmts()

	conn, err := mq.Dial(ctx, mq.DialConfig{URL: cfg.URL, Name: "bedsctl-bench/baseline-server"})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(cfg.Queue, cfg.Durable, true, false, false, nil); err != nil {
		return fmt.Errorf("declare %s: %w", cfg.Queue, err)
	}
	if err := ch.Qos(cfg.Prefetch, 0, false); err != nil {
		return err
	}
	pub, err := conn.Channel()
	if err != nil {
		return err
	}
	if cfg.Confirm {
		if err := pub.Confirm(false); err != nil {
			return err
		}
	}
	deliveries, err := ch.Consume(cfg.Queue, "baseline", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Queue, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if ready != nil {
		ready()
	}
	var wg sync.WaitGroup
	for i := 0; i < cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range deliveries {
				body, write := s.handle(ctx, d.Body)
				conf, err := pub.PublishWithDeferredConfirmWithContext(context.Background(), "", d.ReplyTo, false, false, amqp.Publishing{
					ContentType: wire.ContentType, CorrelationId: d.CorrelationId, MessageId: d.MessageId,
					Body: body, Timestamp: time.Now(),
				})
				if err == nil && conf != nil && write {
					var ok bool
					if ok, err = conf.WaitContext(context.Background()); err == nil && !ok {
						err = errors.New("nack")
					}
				}
				if err != nil {
					cfg.Log.Error("baseline reply", "err", err)
					continue
				}
				_ = d.Ack(false)
			}
		}()
	}
	var cause error
	select {
	case <-ctx.Done():
		_ = ch.Cancel("baseline", false)
	case e := <-closed:
		if e != nil {
			cause = e
		} else {
			cause = errors.New("connection closed")
		}
	}
	wg.Wait()
	return cause
}

type baseline struct {
	db                                  *sql.DB
	read, filtered, create, update, del *sql.Stmt // nil unless prepared
}

func (s *baseline) prepare(ctx context.Context, mode string) error {
	switch mode {
	case "", StmtPrepared:
	case StmtInterpolate, StmtPlain:
		return nil
	default:
		return fmt.Errorf("baseline statement mode %q: one of prepared, interpolate, plain", mode)
	}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{{&s.read, PointReadSQL}, {&s.filtered, FilteredReadSQL}, {&s.create, CreateSQL}, {&s.update, UpdateSQL}, {&s.del, DeleteSQL}} {
		st, err := s.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("baseline: prepare %s: %w", p.sql, err)
		}
		*p.dst = st
	}
	return nil
}

func (s *baseline) closeStmts() {
	for _, st := range []*sql.Stmt{s.read, s.filtered, s.create, s.update, s.del} {
		if st != nil {
			st.Close()
		}
	}
}

func (s *baseline) query(ctx context.Context, st *sql.Stmt, text string, args ...any) (*sql.Rows, error) {
	if st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, text, args...)
}

// bReq is the part of a request the baseline reads.
type bReq struct {
	Op     string `json:"op"`
	Filter struct {
		ID    json.RawMessage `json:"id"`
		Email struct {
			Like string `json:"like"`
		} `json:"email"`
	} `json:"filter"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
	Data   struct {
		Email  *string          `json:"email"`
		Name   *string          `json:"name"`
		Age    *int64           `json:"age"`
		Score  *float64         `json:"score"`
		Active *bool            `json:"active"`
		Prefs  *json.RawMessage `json:"prefs"`
	} `json:"data"`
}

// bRow is one users record as the reply carries it.
type bRow struct {
	ID      int64           `json:"id"`
	Email   string          `json:"email"`
	Name    *string         `json:"name"`
	Age     *int64          `json:"age"`
	Score   *float64        `json:"score"`
	Active  *bool           `json:"active"`
	Prefs   json.RawMessage `json:"prefs"`
	Created *time.Time      `json:"created"`
}

type bReply struct {
	OK       bool        `json:"ok"`
	Event    string      `json:"event"`
	Node     string      `json:"node"`
	Rows     []bRow      `json:"rows,omitempty"`
	Count    int64       `json:"count"`
	Affected int64       `json:"affected"`
	Key      any         `json:"key,omitempty"`
	Error    *wire.Error `json:"error,omitempty"`
}

// handle answers one request body with a reply body, and says whether the
// request was a write.
func (s *baseline) handle(ctx context.Context, body []byte) ([]byte, bool) {
	var req bReq
	var rep bReply
	err := json.Unmarshal(body, &req)
	if err == nil {
		rep, err = s.run(ctx, &req)
	}
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = &wire.Error{Code: wire.CodeInternal, Message: err.Error()}
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1062 {
				we.Code = wire.CodeConflict
			}
		}
		rep = bReply{Error: we}
	}
	rep.Node = "baseline"
	out, _ := json.Marshal(&rep)
	return out, req.Op == "create" || req.Op == "update" || req.Op == "delete"
}

func (s *baseline) run(ctx context.Context, req *bReq) (bReply, error) {
	limit := req.Limit
	if limit == 0 {
		limit = 100
	}
	switch req.Op {
	case "read":
		var rows *sql.Rows
		var err error
		if bytes.HasPrefix(req.Filter.ID, []byte("{")) {
			var gte struct{ Gte int64 }
			if err := json.Unmarshal(req.Filter.ID, &gte); err != nil {
				return bReply{}, err
			}
			rows, err = s.query(ctx, s.filtered, FilteredReadSQL, req.Filter.Email.Like, gte.Gte, limit, req.Offset)
		} else {
			id, perr := strconv.ParseInt(string(req.Filter.ID), 10, 64)
			if perr != nil {
				return bReply{}, &wire.Error{Code: wire.CodeBadRequest, Message: "baseline reads by id"}
			}
			rows, err = s.query(ctx, s.read, PointReadSQL, id, limit, req.Offset)
		}
		if err != nil {
			return bReply{}, err
		}
		out, err := scanUsers(rows)
		if err != nil {
			return bReply{}, err
		}
		return bReply{OK: true, Rows: out, Count: int64(len(out))}, nil
	case "create":
		d := req.Data
		if d.Email == nil {
			return bReply{}, &wire.Error{Code: wire.CodeBadValue, Message: "email is required", Field: "email"}
		}
		var prefs any
		if d.Prefs != nil {
			prefs = string(*d.Prefs)
		}
		// NULL event ID: the bare create, no event record (see CreateSQL).
		rows, err := s.query(ctx, s.create, CreateSQL, nil, *d.Email, d.Name, d.Age, d.Score, d.Active, prefs)
		if err != nil {
			return bReply{}, err
		}
		key, err := firstInt(rows)
		if err != nil {
			return bReply{}, err
		}
		return bReply{OK: true, Affected: 1, Key: key}, nil
	case "update":
		id, err := strconv.ParseInt(string(req.Filter.ID), 10, 64)
		if err != nil {
			return bReply{}, &wire.Error{Code: wire.CodeBadRequest, Message: "baseline updates by id"}
		}
		return s.updateByID(ctx, id, req)
	case "delete":
		id, err := strconv.ParseInt(string(req.Filter.ID), 10, 64)
		if err != nil {
			return bReply{}, &wire.Error{Code: wire.CodeBadRequest, Message: "baseline deletes by id"}
		}
		return s.deleteByID(ctx, id)
	}
	return bReply{}, &wire.Error{Code: wire.CodeBadRequest, Message: "baseline serves read, create, update and delete"}
}

// deleteByID runs what the adapter runs for a delete by key: the
// procedure's one CALL with a NULL event ID, the bare delete, which
// records nothing (see DeleteSQL).
func (s *baseline) deleteByID(ctx context.Context, id int64) (bReply, error) {
	rows, err := s.query(ctx, s.del, DeleteSQL, nil, id)
	if err != nil {
		return bReply{}, err
	}
	n, err := firstInt(rows)
	if err != nil {
		return bReply{}, err
	}
	if n == 0 {
		return bReply{}, wire.Errorf(wire.CodeNotFound, "no users record matches the filter")
	}
	return bReply{OK: true, Affected: n}, nil
}

// updateByID runs what the adapter runs for an update by key: the
// procedure's one CALL, which merges the request's data into the row
// itself (the fields it sets in beds_set), with a NULL event ID: the bare
// update, which records nothing (see UpdateSQL).
func (s *baseline) updateByID(ctx context.Context, id int64, req *bReq) (bReply, error) {
	d := &req.Data
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"email", d.Email != nil}, {"name", d.Name != nil}, {"age", d.Age != nil}, {"score", d.Score != nil}, {"active", d.Active != nil}, {"prefs", d.Prefs != nil}} {
		if f.set {
			set = append(set, f.name)
		}
	}
	var prefs any
	if d.Prefs != nil {
		prefs = string(*d.Prefs)
	}
	rows, err := s.query(ctx, s.update, UpdateSQL, nil, strings.Join(set, ","), id, d.Email, d.Name, d.Age, d.Score, d.Active, prefs)
	if err != nil {
		return bReply{}, err
	}
	n, err := firstInt(rows)
	if err != nil {
		return bReply{}, err
	}
	if n == 0 {
		return bReply{}, wire.Errorf(wire.CodeNotFound, "no users record matches the filter")
	}
	return bReply{OK: true, Affected: n}, nil
}

func nullable[T any](ok bool, v T) any {
	if !ok {
		return nil
	}
	return v
}

func scanUsers(rows *sql.Rows) ([]bRow, error) {
	defer rows.Close()
	out := []bRow{}
	for rows.Next() {
		var (
			r      bRow
			name   sql.NullString
			age    sql.NullInt64
			score  sql.NullFloat64
			active sql.NullBool
			prefs  sql.Null[[]byte]
			made   sql.NullTime
		)
		if err := rows.Scan(&r.ID, &r.Email, &name, &age, &score, &active, &prefs, &made); err != nil {
			return nil, err
		}
		if name.Valid {
			r.Name = &name.String
		}
		if age.Valid {
			r.Age = &age.Int64
		}
		if score.Valid {
			r.Score = &score.Float64
		}
		if active.Valid {
			r.Active = &active.Bool
		}
		if prefs.Valid && json.Valid(prefs.V) {
			r.Prefs = append(json.RawMessage(nil), prefs.V...)
		}
		if made.Valid {
			t := made.Time.UTC()
			r.Created = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// firstInt reads the first column of the first row and drains every result
// set, as the adapter does after a CALL.
func firstInt(rows *sql.Rows) (int64, error) {
	defer rows.Close()
	var v int64
	got := false
	for {
		for rows.Next() {
			if !got {
				if err := rows.Scan(&v); err != nil {
					return 0, err
				}
				got = true
			}
		}
		if !rows.NextResultSet() {
			break
		}
	}
	return v, rows.Err()
}

package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// The templates tercero stores in (services/tercero/templates).
const (
	TemplateAccounts = "accounts"
	TemplateSessions = "sessions"
	TemplateFailures = "failures"
)

// table is one of tercero's templates and the store serving it.
type table struct {
	t      *template.Template
	s      store.Store
	limits store.Limits
}

// filter is a query's filter or data, encoded as the contract's JSON.
type filter map[string]any

// run builds req for the table's template and runs it under event (empty
// for a read): the one way this package touches storage.
func (tb *table) run(ctx context.Context, event string, req *wire.Request) (*store.Result, error) {
	req.Template = tb.t.Name
	q, err := store.Build(tb.t, event, req, tb.limits)
	if err != nil {
		return nil, err
	}
	return tb.s.Exec(ctx, q)
}

func encode(v filter) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("account: encoding a query member: %v", err)) // only strings, numbers, bools, lists: cannot fail
	}
	return b
}

// read returns the rows matching f, with fields (all when empty), sorted by
// sort, at most limit.
func (tb *table) read(ctx context.Context, f filter, fields []string, sort []string, limit int) ([]wire.Row, error) {
	res, err := tb.run(ctx, "", &wire.Request{Op: wire.OpRead, Filter: encode(f), Fields: fields, Sort: sort, Limit: limit})
	if err != nil {
		return nil, err
	}
	return res.Rows, nil
}

// one returns the row matching f, nil when none does.
func (tb *table) one(ctx context.Context, f filter, fields ...string) (wire.Row, error) {
	rows, err := tb.read(ctx, f, fields, nil, 1)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// count returns how many rows match f.
func (tb *table) count(ctx context.Context, f filter) (int64, error) {
	res, err := tb.run(ctx, "", &wire.Request{Op: wire.OpCount, Filter: encode(f)})
	if err != nil {
		return 0, err
	}
	return res.Count, nil
}

// create makes a row of data under event.
func (tb *table) create(ctx context.Context, event string, data filter) (*store.Result, error) {
	return tb.run(ctx, event, &wire.Request{Op: wire.OpCreate, Data: encode(data)})
}

// update sets data on the rows matching f under event.
func (tb *table) update(ctx context.Context, event string, f, data filter) (*store.Result, error) {
	return tb.run(ctx, event, &wire.Request{Op: wire.OpUpdate, Filter: encode(f), Data: encode(data)})
}

// deleteAll deletes every row matching f in batches of at most batch:
// it reads the keys of a batch, deletes them by key (an in list) under the
// event next returns, and goes on until a batch comes back short. It
// returns how many rows it deleted.
func (tb *table) deleteAll(ctx context.Context, f filter, batch int, next func() string) (int64, error) {
	batch = max(1, min(batch, tb.limits.MaxInList, tb.limits.MaxAffected, tb.limits.MaxLimit))
	key := tb.t.Key.Name
	var total int64
	for {
		rows, err := tb.read(ctx, f, []string{key}, nil, batch)
		if err != nil {
			return total, err
		}
		if len(rows) == 0 {
			return total, nil
		}
		keys := make([]any, len(rows))
		for i, r := range rows {
			keys[i] = r[key]
		}
		res, err := tb.run(ctx, next(), &wire.Request{Op: wire.OpDelete, Filter: encode(filter{key: filter{"in": keys}})})
		switch {
		case isCode(err, wire.CodeNotFound): // deleted meanwhile by someone else
		case err != nil:
			return total, err
		case !res.Replayed:
			total += res.Affected
		}
		if len(rows) < batch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// isCode reports whether err is a contract error of code c.
func isCode(err error, c wire.Code) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == c
}

// stamp writes t as the contract's datetime.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Row accessors: the values the MariaDB adapter reads (int64, string,
// bool, time.Time, json.RawMessage), or their zero values.
func rowInt(r wire.Row, k string) int64 {
	v, _ := r[k].(int64)
	return v
}

func rowString(r wire.Row, k string) string {
	v, _ := r[k].(string)
	return v
}

func rowBool(r wire.Row, k string) bool {
	v, _ := r[k].(bool)
	return v
}

func rowTime(r wire.Row, k string) time.Time {
	v, _ := r[k].(time.Time)
	return v
}

// rowRoles reads a roles column: a JSON array of names.
func rowRoles(r wire.Row, k string) []string {
	var roles []string
	switch v := r[k].(type) {
	case json.RawMessage:
		_ = json.Unmarshal(v, &roles)
	case []byte:
		_ = json.Unmarshal(v, &roles)
	case string:
		_ = json.Unmarshal([]byte(v), &roles)
	}
	return roles
}

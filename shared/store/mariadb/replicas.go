package mariadb

// Replicas serve reads and counts; the rules:
//
//   - A read or count goes to the next replica, in turn, that is fit: its
//     last check found it answering, both replication threads running and
//     Seconds_Behind_Master (whole seconds) no more than the lag bound. A
//     replica that is not replicating has no lag figure (NULL) and is not
//     fit. With no fit replica, the primary serves the read.
//   - A read that fails on a replica because the replica is unreachable or
//     went away (the errors classify calls unavailable) runs again at once
//     on the primary, and the replica is not used until a check finds it
//     fit again: the caller sees no error from a replica. Other errors
//     (a bad value, a missing view) are the caller's, as on the primary.
//   - Writes, the reads inside a write's transaction (FOR UPDATE), the
//     event records of idempotency, lineage and the schema check use the
//     primary only: they must see what was just written.
//   - One goroutine per store, started by Open and stopped by Close,
//     checks every replica each interval with SHOW SLAVE STATUS, which
//     needs the REPLICA MONITOR privilege on MariaDB 10.5.9 and later
//     (SLAVE MONITOR is the same; REPLICATION CLIENT is not enough there)
//     or SUPER. It logs when a replica stops being used and when it is
//     back.
//   - Each replica has its own pool and its own prepared-statement cache:
//     a statement is prepared on the server that runs it.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/wire"
)

// errNoMonitor is ER_SPECIFIC_ACCESS_DENIED_ERROR, what SHOW SLAVE STATUS
// answers an account without REPLICA MONITOR.
const errNoMonitor = 1227

// replica is one server replicating from the primary.
type replica struct {
	addr  string // host:port or socket, for logs; never the DSN (it may hold a password)
	db    *sql.DB
	reads *stmtCache // prepared on this server's connections

	fit atomic.Bool // reads may go here
	// why is the reason it was last found unfit, "" when fit or never
	// checked; the checking goroutine's alone.
	why     string
	checked bool
}

func newReplica(addr string, db *sql.DB) *replica {
	return &replica{addr: addr, db: db, reads: newStmtCache(db)}
}

// dsnAddr is where a DSN points, for logs: its address, or "replica n".
func dsnAddr(dsn string, i int) string {
	if c, err := mysql.ParseDSN(dsn); err == nil && c.Addr != "" {
		return c.Addr
	}
	return "replica " + strconv.Itoa(i+1)
}

// pick returns the next fit replica, in turn, or nil.
func (s *Store) pick() *replica {
	n := uint64(len(s.replicas))
	if n == 0 {
		return nil
	}
	start := s.next.Add(1)
	for i := range n {
		if r := s.replicas[(start+i)%n]; r.fit.Load() {
			return r
		}
	}
	return nil
}

// onReader runs one read or count, fn, through a fit replica's statement
// cache, or the primary's when none is fit. fn queries and consumes its
// rows, so a replica lost in the middle of a result is retried too. A
// failure of the replica itself runs fn again on the primary.
func (s *Store) onReader(ctx context.Context, fn func(*stmtCache) error) error {
	if r := s.pick(); r != nil {
		err := fn(r.reads)
		if err == nil || ctx.Err() != nil || !unavailable(err) {
			return err
		}
		s.lost(r, err)
	}
	return fn(s.reads)
}

// unavailable reports whether err means the server is unreachable, gone
// or overloaded, not that the statement is wrong.
func unavailable(err error) bool {
	var we *wire.Error
	return errors.As(classify(err, nil), &we) && we.Code == wire.CodeUnavailable
}

// lost takes r out of use until its next check finds it fit.
func (s *Store) lost(r *replica, err error) {
	if r.fit.CompareAndSwap(true, false) {
		s.log.Warn("mariadb replica lost: reads go to the primary or other replicas until a check finds it fit",
			"replica", r.addr, "err", classify(err, nil))
	}
}

// watchReplicas checks every replica now and then each interval until
// ctx ends.
func (s *Store) watchReplicas(ctx context.Context, every time.Duration) {
	defer close(s.watchDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.checkReplicas(ctx, every)
		if s.onCheck != nil {
			s.onCheck()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkReplicas checks every replica at once, each bounded by timeout,
// and updates whether each is fit.
func (s *Store) checkReplicas(ctx context.Context, timeout time.Duration) {
	var wg sync.WaitGroup
	whys := make([]string, len(s.replicas))
	for i, r := range s.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			whys[i] = r.check(cctx, s.maxLag)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // closing: the checks were cut short, not failed
	}
	for i, r := range s.replicas {
		s.judge(r, whys[i])
	}
}

// judge records one check's verdict, why ("" when fit), and logs a
// change: a replica taken out of use, or back.
func (s *Store) judge(r *replica, why string) {
	first := !r.checked
	r.checked = true
	was := r.fit.Swap(why == "")
	switch {
	case why == "" && (!was || first):
		s.log.Info("mariadb replica in use", "replica", r.addr)
	case why != "" && (was || first || kind(why) != kind(r.why)):
		s.log.Warn("mariadb replica skipped: reads go to the primary or other replicas", "replica", r.addr, "reason", why)
	}
	r.why = why
}

// kind is a reason without its figures, so a lag that grows from check to
// check is logged once.
func kind(why string) string {
	k, _, _ := strings.Cut(why, ":")
	return k
}

// check asks the replica for its replication status and returns why it
// may not serve reads, or "" if it may.
func (r *replica) check(ctx context.Context, maxLag time.Duration) string {
	rows, err := r.db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errNoMonitor {
			return "not allowed to read its replication status: GRANT REPLICA MONITOR ON *.* to the replica's account"
		}
		return "unreachable: " + classify(err, nil).Error()
	}
	st, err := scanStatus(rows)
	if err != nil {
		return "unreachable: " + classify(err, nil).Error()
	}
	switch {
	case st == nil:
		return "not a replica: SHOW SLAVE STATUS is empty"
	case st["Slave_IO_Running"] != "Yes":
		return fmt.Sprintf("not replicating: io thread %s %s", st["Slave_IO_Running"], st["Last_IO_Error"])
	case st["Slave_SQL_Running"] != "Yes":
		return fmt.Sprintf("not replicating: sql thread %s %s", st["Slave_SQL_Running"], st["Last_SQL_Error"])
	}
	lag, err := strconv.ParseInt(st["Seconds_Behind_Master"], 10, 64)
	if err != nil {
		return "not replicating: Seconds_Behind_Master is NULL"
	}
	if time.Duration(lag)*time.Second > maxLag {
		return fmt.Sprintf("lagging: %d s behind the primary, more than %v", lag, maxLag)
	}
	return ""
}

// scanStatus reads the first row of SHOW SLAVE STATUS into column name
// -> value (NULL as ""); nil when the server replicates from nowhere.
func scanStatus(rows *sql.Rows) (map[string]string, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	st := make(map[string]string, len(cols))
	for i, c := range cols {
		st[c] = vals[i].String
	}
	return st, rows.Err()
}

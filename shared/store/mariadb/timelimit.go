package mariadb

import (
	"context"
	"strconv"
	"time"
)

// A request's deadline ends the node's wait, but not the statement: the
// driver gives up and drops the connection while the server runs on. So
// every statement carries the deadline to the server as
//
//	SET STATEMENT max_statement_time=<seconds> FOR <statement>
//
// which makes MariaDB abort it (error 1969, answered timeout) once the
// deadline has passed, even if the node is gone. Setting the session
// variable instead would cost a round trip per request and leak into the
// next user of the pooled connection.
//
// Reads and counts are prepared and cached by their text, so their limit
// is the remaining time rounded up to a rung of a ladder (R10 preferred
// numbers, each about 1.26 times the last, from 0.1 s to 10,000 s): a
// read shape has a few texts at most (usually one, a node's deadlines
// being alike), and the server stops a statement at most 28% of its time
// (or 0.1 s) after the deadline, never before it. Writes are not
// prepared, so each of their statements gets the exact remaining time.
// Without a deadline, or with one past the ladder, statements run with
// the server's own limit.

// limitRungs are the ladder's rungs in milliseconds, with their text.
var limitRungs = func() []limitRung {
	var out []limitRung
	for ms := int64(100); ms < 10_000_000; ms *= 10 {
		for _, m := range []int64{100, 125, 160, 200, 250, 315, 400, 500, 630, 800} {
			v := ms * m / 100
			out = append(out, limitRung{time.Duration(v) * time.Millisecond, seconds(v)})
		}
	}
	return append(out, limitRung{10_000 * time.Second, seconds(10_000_000)})
}()

type limitRung struct {
	d    time.Duration
	text string
}

// seconds formats ms milliseconds as decimal seconds: 1250 -> "1.25".
func seconds(ms int64) string {
	s := strconv.FormatInt(ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		f := strconv.FormatInt(1000+frac, 10)[1:] // three digits
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		s += "." + f
	}
	return s
}

const limitPrefix = "SET STATEMENT max_statement_time="

// appendReadLimit appends the server-side limit of a cached statement run
// under ctx: the remaining time rounded up to a rung.
func appendReadLimit(b []byte, ctx context.Context) []byte {
	dl, ok := ctx.Deadline()
	if !ok {
		return b
	}
	left := time.Until(dl)
	for i := range limitRungs {
		if r := &limitRungs[i]; r.d >= left {
			b = append(b, limitPrefix...)
			b = append(b, r.text...)
			return append(b, " FOR "...)
		}
	}
	return b
}

// withLimit returns stmt bounded on the server by ctx's deadline to the
// millisecond, for statements that are not cached.
func withLimit(ctx context.Context, stmt string) string {
	dl, ok := ctx.Deadline()
	if !ok {
		return stmt
	}
	left := time.Until(dl)
	if left > limitRungs[len(limitRungs)-1].d {
		return stmt
	}
	ms := max(int64((left+time.Millisecond-1)/time.Millisecond), 1)
	return limitPrefix + seconds(ms) + " FOR " + stmt
}

// Package pool opens database/sql pools on MariaDB with the one driver
// configuration BEDS uses: the store adapter's pools and the benchmark
// baseline's. It is a package of its own so the benchmark can use it
// without importing the adapter, whose benchmarks import the benchmark.
package pool

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Open prepares a pool on dsn (go-sql-driver form); it does not dial.
// Times travel as UTC time.Time values both ways, and the session's time
// zone is UTC unless the DSN sets time_zone. The pool keeps up to maxConns
// connections open and as many idle, closing those idle for five minutes.
//
// Options.Interpolate turns the driver's interpolateParams on: values are
// bound client side (escaped for the connection's character set) and a
// statement costs one round trip instead of prepare, execute and close.
// When it is false the DSN decides, and the driver's default is off.
// Options.MultiStatements lets one query text hold several statements
// separated by semicolons, sent in one round trip; it takes effect only
// where values are bound client side (a multi-statement text cannot be
// prepared), and the pool's Interpolating reports whether they are.
//
// Client-side binding with a charset or collation whose multibyte
// characters may end in a backslash or quote byte (big5, cp932, gb2312,
// gbk, gb18030, sjis) would let a value escape its quotes, so Open refuses
// that combination and names the fix.
func Open(dsn string, maxConns int, opts Options) (*sql.DB, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's message quotes no secrets, but say where it failed.
		return nil, fmt.Errorf("dsn: %w", err)
	}
	c.InterpolateParams = c.InterpolateParams || opts.Interpolate
	if c.InterpolateParams {
		if err := checkCharsets(dsn, c.Collation); err != nil {
			return nil, err
		}
		c.MultiStatements = c.MultiStatements || opts.MultiStatements
	}
	c.ParseTime = true
	c.Loc = time.UTC
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	if _, ok := c.Params["time_zone"]; !ok {
		c.Params["time_zone"] = "'+00:00'"
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// Options choose how a pool binds and sends statements.
type Options struct {
	Interpolate     bool // bind values client side
	MultiStatements bool // allow several statements in one text, where values are bound client side
}

// Interpolating reports whether dsn, opened with opts, binds values client
// side: the only way a pool can send several statements at once.
func Interpolating(dsn string, opts Options) bool {
	c, err := mysql.ParseDSN(dsn)
	return err == nil && (c.InterpolateParams || opts.Interpolate)
}

// unsafeCharsets are the MariaDB character sets in which a multibyte
// character's trailing byte may be 0x5c (backslash) or 0x27 (quote), so
// escaping values byte by byte on the client is unsafe. gb2312 is listed
// with them as the driver lists its collations: a server may treat it as
// gbk.
var unsafeCharsets = map[string]bool{
	"big5": true, "cp932": true, "gb2312": true, "gbk": true, "gb18030": true, "sjis": true,
}

// checkCharsets refuses a DSN whose charset (any in its list: the driver
// uses the first the server accepts) or collation is unsafe with values
// bound client side.
func checkCharsets(dsn, collation string) error {
	for _, cs := range dsnCharsets(dsn) {
		if unsafeCharsets[strings.ToLower(cs)] {
			return unsafeError("charset", cs)
		}
	}
	if cs, _, _ := strings.Cut(collation, "_"); unsafeCharsets[strings.ToLower(cs)] {
		return unsafeError("collation", collation)
	}
	return nil
}

func unsafeError(param, name string) error {
	return fmt.Errorf("dsn: %s=%s is unsafe with values bound client side (interpolateParams): "+
		"a multibyte character can hide a quote from the escaping; use charset=utf8mb4, "+
		"or set interpolateParams=false in the DSN to bind values on the server", param, name)
}

// dsnCharsets returns the charset parameter's list. The driver keeps it
// unexported, so it is read from the DSN the way the driver parses it:
// parameters follow the first '?' after the last '/'.
func dsnCharsets(dsn string) []string {
	i := strings.LastIndexByte(dsn, '/')
	if i < 0 {
		return nil
	}
	_, params, ok := strings.Cut(dsn[i:], "?")
	if !ok {
		return nil
	}
	var out []string
	for _, kv := range strings.Split(params, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "charset" {
			continue
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		out = append(out, strings.Split(v, ",")...)
	}
	return out
}

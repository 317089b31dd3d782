// Package pool opens database/sql pools on MariaDB with the one driver
// configuration BEDS uses: the store adapter's pools and the benchmark
// baseline's. It is a package of its own so the benchmark can use it
// without importing the adapter, whose benchmarks import the benchmark.
package pool

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Open prepares a pool on dsn (go-sql-driver form); it does not dial.
// Times travel as UTC time.Time values both ways, and the session's time
// zone is UTC unless the DSN sets time_zone. The pool keeps up to maxConns
// connections open and as many idle, closing those idle for five minutes.
//
// interpolate turns the driver's interpolateParams on: values are bound
// client side (escaped for the connection's character set) and a statement
// costs one round trip instead of prepare, execute and close. When
// interpolate is false the DSN decides, and the driver's default is off.
func Open(dsn string, maxConns int, interpolate bool) (*sql.DB, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's message quotes no secrets, but say where it failed.
		return nil, fmt.Errorf("dsn: %w", err)
	}
	c.ParseTime = true
	c.Loc = time.UTC
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	if _, ok := c.Params["time_zone"]; !ok {
		c.Params["time_zone"] = "'+00:00'"
	}
	c.InterpolateParams = c.InterpolateParams || interpolate
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

package mariadb

import (
	"context"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/store"
)

// Adapter opens stores of kind "mariadb" for the IPL.
var Adapter store.Adapter = adapter{}

type adapter struct{}

func (adapter) Kind() string { return config.KindMariaDB }

// Addrs lists the TCP addresses of the primary and the secondary DSN; a
// DSN over a Unix socket, or one that does not parse, has none (Open
// reports the parse error).
func (adapter) Addrs(c config.Store) []string {
	var out []string
	for _, dsn := range []string{c.DSN, c.SecondaryDSN} {
		if dsn == "" {
			continue
		}
		if dc, err := mysql.ParseDSN(dsn); err == nil && dc.Net == "tcp" {
			out = append(out, dc.Addr)
		}
	}
	return out
}

func (adapter) Open(_ context.Context, c config.Store) (store.Store, error) {
	s, err := Open(Config{DSN: c.DSN, SecondaryDSN: c.SecondaryDSN, MaxConns: c.MaxConns})
	if err != nil {
		return nil, err
	}
	return s, nil
}

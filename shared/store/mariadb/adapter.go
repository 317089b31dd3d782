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

// Addrs lists the TCP address of the primary; a DSN over a Unix socket,
// or one that does not parse, has none (Open reports the parse error).
// Replicas are left out: the IPL waits for every address it is given,
// and a node starts without its replicas (the store checks them itself).
func (adapter) Addrs(c config.Store) []string {
	if dc, err := mysql.ParseDSN(c.DSN); err == nil && dc.Net == "tcp" {
		return []string{dc.Addr}
	}
	return nil
}

func (adapter) Open(_ context.Context, c config.Store) (store.Store, error) {
	s, err := Open(Config{
		DSN: c.DSN, Replicas: c.Replicas, MaxLag: c.ReplicaMaxLag.D(), Check: c.ReplicaCheck.D(), MaxConns: c.MaxConns,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

package store

import (
	"context"

	"github.com/beds-project/beds/shared/config"
)

// Adapter opens stores of one kind. Each adapter package exports one
// (mariadb.Adapter, mongo.Adapter) and owns how its config is read: the
// servers it names and how a pool is opened. A role lists the adapters it
// links, so its binary carries only their drivers, and the IPL opens stores
// through them without knowing any kind.
type Adapter interface {
	// Kind is the config kind of the stores it opens ("mariadb", "mongo").
	Kind() string
	// Addrs lists host:port of every server c names, for the IPL's
	// reachability check and its messages. It never returns credentials,
	// and leaves out what has no fixed address (a DNS seed list, a socket).
	Addrs(c config.Store) []string
	// Open prepares the store's connection pools. It need not dial: the
	// IPL pings the store next.
	Open(ctx context.Context, c config.Store) (Store, error)
}

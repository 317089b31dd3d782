package mongo

import (
	"context"
	"net"
	"strings"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/store"
)

// Adapter opens stores of kind "mongo" for the IPL.
var Adapter store.Adapter = adapter{}

type adapter struct{}

func (adapter) Kind() string { return config.KindMongo }

// Addrs lists host:port of every host of a mongodb:// URI (port 27017 where
// the URI names none). A mongodb+srv:// URI names a DNS seed list, not
// servers, and an invalid URI names nothing (Open reports why).
func (adapter) Addrs(c config.Store) []string {
	u, err := parseURI(c.URI)
	if err != nil || u.srv {
		return nil
	}
	var out []string
	for _, h := range strings.Split(u.hosts, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "27017")
		}
		out = append(out, h)
	}
	return out
}

func (adapter) Open(ctx context.Context, c config.Store) (store.Store, error) {
	s, err := Open(ctx, Config{URI: c.URI, MaxConns: uint64(max(c.MaxConns, 0))})
	if err != nil {
		return nil, err
	}
	return s, nil
}

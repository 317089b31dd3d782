package mariadb

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/config"
)

func TestAdapterAddrs(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    config.Store
		want []string
	}{
		{"primary", config.Store{DSN: "u:secret@tcp(db1:3306)/beds"}, []string{"db1:3306"}},
		// A node starts without its replicas: the IPL must not wait for them.
		{"primary and replicas", config.Store{DSN: "u@tcp(db1:3306)/beds", Replicas: []string{"u@tcp(db2:3307)/beds"}}, []string{"db1:3306"}},
		{"default port", config.Store{DSN: "u@tcp(db1)/beds"}, []string{"db1:3306"}},
		{"unix socket", config.Store{DSN: "u@unix(/run/mysqld/mysqld.sock)/beds"}, nil},
		{"unparseable", config.Store{DSN: "not a dsn"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Adapter.Addrs(tc.c)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Addrs = %v, want %v", got, tc.want)
			}
			if strings.Contains(strings.Join(got, ","), "secret") {
				t.Errorf("Addrs leaks the password: %v", got)
			}
		})
	}
	if Adapter.Kind() != config.KindMariaDB {
		t.Errorf("Kind = %q", Adapter.Kind())
	}
}

// TestAdapterReplicas: the store's replica keys reach the store, and 0
// means the default.
func TestAdapterReplicas(t *testing.T) {
	for _, tc := range []struct {
		lag, want time.Duration
	}{
		{3 * time.Second, 3 * time.Second},
		{0, config.DefaultReplicaMaxLag},
	} {
		st, err := Adapter.Open(context.Background(), config.Store{
			Kind: config.KindMariaDB, DSN: "u@tcp(127.0.0.1:1)/beds",
			Replicas:      []string{"u@tcp(127.0.0.1:1)/beds?timeout=100ms", "u@tcp(127.0.0.1:2)/beds?timeout=100ms"},
			ReplicaMaxLag: config.Duration(tc.lag), ReplicaCheck: config.Duration(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		s := st.(*Store)
		if len(s.replicas) != 2 || s.maxLag != tc.want || s.replicas[1].addr != "127.0.0.1:2" {
			t.Errorf("lag %v: %d replicas, max lag %v, second at %s", tc.lag, len(s.replicas), s.maxLag, s.replicas[1].addr)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}

package mariadb

import (
	"slices"
	"strings"
	"testing"

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

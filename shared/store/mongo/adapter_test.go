package mongo

import (
	"slices"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/config"
)

func TestAdapterAddrs(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want []string
	}{
		{"mongodb://127.0.0.1:27017/beds", []string{"127.0.0.1:27017"}},
		{"mongodb://u:s3cret@a:1,b,[::1]/beds?replicaSet=rs", []string{"a:1", "b:27017", "[::1]:27017"}},
		{"mongodb+srv://u:s3cret@cluster.example.com/beds", nil},
		{"http://a:1/beds", nil},
		{"mongodb://u:p@ss@a/beds", nil},
	} {
		got := Adapter.Addrs(config.Store{URI: tc.uri})
		if !slices.Equal(got, tc.want) {
			t.Errorf("Addrs(%q) = %v, want %v", tc.uri, got, tc.want)
		}
		if strings.Contains(strings.Join(got, ","), "s3cret") {
			t.Errorf("Addrs(%q) leaks the password: %v", tc.uri, got)
		}
	}
	if Adapter.Kind() != config.KindMongo {
		t.Errorf("Kind = %q", Adapter.Kind())
	}
}

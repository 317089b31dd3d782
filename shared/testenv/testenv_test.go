package testenv

import (
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestSplitSQL(t *testing.T) {
	src := `-- a comment
CREATE TABLE t (a INT);

CREATE VIEW v AS
  SELECT a FROM t;
DELIMITER //
CREATE PROCEDURE p(IN x INT)
BEGIN
  INSERT INTO t VALUES (x);
  SELECT 1;
END//
DELIMITER ;
DROP VIEW v;`
	got := SplitSQL(src)
	want := []Statement{
		{"CREATE TABLE t (a INT)", 2},
		{"CREATE VIEW v AS\n  SELECT a FROM t", 4},
		{"CREATE PROCEDURE p(IN x INT)\nBEGIN\n  INSERT INTO t VALUES (x);\n  SELECT 1;\nEND", 7},
		{"DROP VIEW v", 13},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		configured, local, short, docker bool
		want                             source
	}{
		{configured: true, want: fromEnv},
		{configured: true, local: true, short: true, docker: true, want: fromEnv},
		{local: true, want: fromLocal},
		{local: true, docker: true, want: fromLocal},
		{local: true, short: true, want: fromLocal},
		{docker: true, want: fromDocker},
		{short: true, docker: true, want: missing},
		{short: true, want: missing},
		{want: missing},
	} {
		if got := choose(tc.configured, tc.local, tc.short, tc.docker); got != tc.want {
			t.Errorf("choose(configured=%v, local=%v, short=%v, docker=%v) = %v, want %v",
				tc.configured, tc.local, tc.short, tc.docker, got, tc.want)
		}
	}
}

func TestExpiry(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		want    uint
	}{
		{0, 3600},
		{-time.Second, 3600},
		{10 * time.Minute, 660},
		{15 * time.Minute, 960},
		{1500 * time.Millisecond, 62},
	} {
		if got := expiry(tc.timeout); got != tc.want {
			t.Errorf("expiry(%v) = %d, want %d", tc.timeout, got, tc.want)
		}
	}
}

// The bases of the Docker path parse as the local ones do, to the published
// address.
func TestImageBases(t *testing.T) {
	const hp = "localhost:32768"
	for _, tc := range []struct {
		im   image
		addr func(string) (string, error)
	}{
		{rabbitImage, func(s string) (string, error) { u, err := url.Parse(s); return u.Host, err }},
		{mariaImage, func(s string) (string, error) { c, err := mysql.ParseDSN(s); return c.Addr, err }},
		{mongoImage, func(s string) (string, error) { u, err := url.Parse(s); return u.Host, err }},
	} {
		base := fmt.Sprintf(tc.im.base, hp)
		if got, err := tc.addr(base); err != nil || got != hp {
			t.Errorf("%s: base %q gives %q, %v", tc.im.repo, base, got, err)
		}
	}
}

package testenv

import (
	"reflect"
	"testing"
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

package template_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
)

// LoadFS loads what Load loads from the same files, and fails the same
// way on a bad one, naming the file by its name within the FS.
func TestLoadFS(t *testing.T) {
	dir := filepath.Join(testenv.Root(t), "templates")
	fromDir, err := template.Load(dir, stores)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	fsys := fstest.MapFS{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fsys[filepath.Base(f)] = &fstest.MapFile{Data: b}
	}
	fsys["README.md"] = &fstest.MapFile{Data: []byte("not a template")}
	fromFS, err := template.LoadFS(fsys, stores)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromFS.Names(), fromDir.Names()) || !slices.Equal(fromFS.RelationNames(), fromDir.RelationNames()) {
		t.Fatalf("LoadFS: %v %v, Load: %v %v", fromFS.Names(), fromFS.RelationNames(), fromDir.Names(), fromDir.RelationNames())
	}
	for _, n := range fromDir.Names() {
		if a, b := fromFS.Get(n).Fingerprint(), fromDir.Get(n).Fingerprint(); a != b {
			t.Errorf("template %s: fingerprint %s from the FS, %s from the folder", n, a, b)
		}
	}

	fsys["zz_rec.toml"] = &fstest.MapFile{Data: []byte("name = \"zz\"\nkind = \"rec\"\n")}
	if _, err := template.LoadFS(fsys, stores); err == nil || !strings.Contains(err.Error(), "zz_rec.toml") {
		t.Errorf("LoadFS with a bad file: %v, want an error naming zz_rec.toml", err)
	}
	if r, err := template.LoadFS(fstest.MapFS{}, stores); err != nil || r.Len() != 0 {
		t.Errorf("LoadFS of an empty FS: %v templates, %v", r, err)
	}
}

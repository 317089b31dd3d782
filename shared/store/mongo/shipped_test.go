package mongo

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/testenv"
)

// The checked-in objects (deploy/mongo/NNN_<template>.js, hand edits
// included, applied as testenv.Mongo applies them) agree with every
// shipped MongoDB template, and each file was generated from the template
// as it is now: a template changed without its objects, or objects changed
// against their template, fail here, in CI.
func TestCheckShipped(t *testing.T) {
	ts := mongoTemplates(t)
	s, err := Open(t.Context(), Config{URI: testenv.Mongo(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range checkSchema(t, s, ts...) {
		t.Errorf("deploy/mongo disagrees with the templates: %s", d)
	}

	reg := shipped(t)
	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), "deploy", "mongo", "*.js"))
	headers := map[string]string{} // template -> file
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, fp, ok := schema.ParseHeader(src)
		if !ok {
			continue // init.js, the image's runner of BEDS's own indexes.json
		}
		tpl := reg.Get(name)
		switch {
		case tpl == nil:
			t.Errorf("%s: generated for template %s, which is not shipped", f, name)
		case fp != tpl.Fingerprint():
			t.Errorf("%s: generated from another version of template %s (fingerprint %s, now %s): run bedsctl schema gen %s, review the difference and apply it", f, name, fp, tpl.Fingerprint(), name)
		}
		if headers[name] != "" {
			t.Errorf("template %s: two files, %s and %s", name, headers[name], f)
		}
		headers[name] = f
	}
	for _, tpl := range ts {
		if headers[tpl.Name] == "" {
			t.Errorf("template %s: no deploy/mongo file generated for it (bedsctl schema gen --out deploy %s)", tpl.Name, tpl.Name)
		}
	}
}

// The checked-in scripts run under mongosh as a DBA runs them, twice (the
// second run changes nothing), and leave a database that passes the
// check: the scripts' own code, which testenv does not run, works. It
// needs mongosh (BEDS_TEST_MONGOSH, or on PATH), which CI's machine lacks:
// there it is skipped, saying so.
func TestScriptsUnderMongosh(t *testing.T) {
	mongosh := os.Getenv("BEDS_TEST_MONGOSH")
	if mongosh == "" {
		var err error
		if mongosh, err = osexec.LookPath("mongosh"); err != nil {
			t.Skip("mongosh is not installed (npm install mongosh, or set BEDS_TEST_MONGOSH): the scripts' code is not run")
		}
	}
	uri := testenv.MongoWith(t)
	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), "deploy", "mongo", "[0-9][0-9][0-9]_*.js"))
	for _, pass := range []string{"first", "again"} {
		for _, f := range files {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			out, err := osexec.CommandContext(ctx, mongosh, "--quiet", "--norc", uri, f).CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("%s run of %s: %v\n%s", pass, f, err, out)
			}
			if !strings.Contains(string(out), "indexes are in place") {
				t.Errorf("%s run of %s:\n%s", pass, f, out)
			}
		}
	}
	s, err := Open(t.Context(), Config{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range checkSchema(t, s, mongoTemplates(t)...) {
		t.Errorf("after mongosh: %s", d)
	}
}

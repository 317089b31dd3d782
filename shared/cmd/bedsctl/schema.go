package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/store/mariadb"
	"github.com/beds-project/beds/shared/store/mongo"
	"github.com/beds-project/beds/shared/template"
)

// generator writes the objects of one store kind's templates.
type generator struct {
	ext      string // of the files it writes: ".sql", ".js"
	generate func(*template.Template) ([]byte, error)
}

// generators maps a store kind to its generator. A kind without one is
// skipped by schema gen, saying so.
var generators = map[string]generator{
	template.StoreMariaDB: {ext: ".sql", generate: mariadb.GenerateSchema},
	template.StoreMongo:   {ext: ".js", generate: mongo.GenerateSchema},
}

// schemaAdapters open the stores schema check compares. Their stores that
// implement schema.Checker are checked; the others are reported as not
// checked.
var schemaAdapters = []store.Adapter{mariadb.Adapter, mongo.Adapter}

const schemaUsage = `usage:
  bedsctl schema gen [--dir DIR] [--out DEPLOY] [--force] [TEMPLATE...]
  bedsctl schema check [--dir DIR] [--config-dir DIR] [--timeout D] [TEMPLATE...]
  bedsctl schema apply [--dir DIR] [--config-dir DIR] [--deploy DEPLOY] [--timeout D] [TEMPLATE...]

gen writes the database objects of each template (all without TEMPLATE):
to stdout, or with --out into DEPLOY/<store kind>/NNN_<template>.EXT (.sql
for MariaDB, a mongosh script .js for MongoDB), the number of the
template's file if there is one, else the next free one. A file that
differs from the generated text (hand edits) is kept unless --force. The
DBA reviews, checks in and applies the files.

check connects to every store the templates use, with the node's config
(BEDS_CONFIG_DIR, or --config-dir), and prints each difference between a
database and its templates as template, object, expected, found; it exits
1 on any.

apply puts the checked-in MongoDB scripts, DEPLOY/mongo/NNN_<template>.js
(default deploy), of each MongoDB template into its store's database, as
mongosh runs them: for machines without mongosh, such as this project's
with FerretDB. The DBA runs it, as the scripts themselves, by hand. MariaDB
files are applied with the mariadb client (make schema).
`

func cmdSchema(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, schemaUsage)
		return 2
	}
	switch args[0] {
	case "gen":
		return cmdSchemaGen(args[1:], stdout, stderr)
	case "check":
		return cmdSchemaCheck(ctx, args[1:], stdout, stderr)
	case "apply":
		return cmdSchemaApply(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, schemaUsage)
		return 0
	}
	fmt.Fprintf(stderr, "bedsctl schema: unknown command %q\n\n%s", args[0], schemaUsage)
	return 2
}

// loadTemplates loads dir with stores, printing what is wrong; nil means
// the caller exits 1.
func loadTemplates(dir string, stores map[string]string, stderr io.Writer) *template.Registry {
	reg, err := template.Load(dir, stores)
	if err != nil {
		fmt.Fprintf(stderr, "bedsctl: templates in %s are not valid:\n", dir)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  "+line)
		}
		return nil
	}
	for _, w := range reg.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return reg
}

// pick returns the templates names selects, all when it is empty.
func pick(reg *template.Registry, names []string) ([]*template.Template, error) {
	if len(names) == 0 {
		names = reg.Names()
	}
	var out []*template.Template
	for _, n := range names {
		t := reg.Get(n)
		if t == nil {
			return nil, fmt.Errorf("no rec template %q (templates: %s)", n, strings.Join(reg.Names(), ", "))
		}
		out = append(out, t)
	}
	return out, nil
}

func cmdSchemaGen(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("schema gen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dirDefault, stores := offlineConfig()
	dir := fset.String("dir", dirDefault, "template folder")
	out := fset.String("out", "", "deploy folder: write DEPLOY/<store kind>/NNN_<template>.sql (or .js) instead of printing")
	force := fset.Bool("force", false, "overwrite files that differ from the generated text")
	names, err := parse(fset, args)
	if err != nil {
		return 2
	}
	reg := loadTemplates(*dir, stores, stderr)
	if reg == nil {
		return 1
	}
	ts, err := pick(reg, names)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 2
	}
	code := 0
	first := true
	for _, t := range ts {
		g, ok := generators[t.StoreKind]
		if !ok {
			fmt.Fprintf(stderr, "skipped %s: no generator for store kind %s yet\n", t.Name, t.StoreKind)
			if len(names) > 0 {
				code = 1
			}
			continue
		}
		text, err := g.generate(t)
		if err != nil {
			fmt.Fprintln(stderr, "bedsctl:", err)
			code = 1
			continue
		}
		if *out == "" {
			if !first {
				fmt.Fprintln(stdout)
			}
			first = false
			stdout.Write(text)
			continue
		}
		if err := writeGenerated(filepath.Join(*out, t.StoreKind), t.Name, g.ext, text, *force, stdout); err != nil {
			fmt.Fprintln(stderr, "bedsctl:", err)
			code = 1
		}
	}
	return code
}

// numberedRE is a generated file's name: NNN_<template><ext>.
var numberedRE = regexp.MustCompile(`^([0-9]{3})_([a-z][a-z0-9_]*)(\.[a-z]+)$`)

// generatedPath returns the file of template name in dir: the one named
// NNN_<name><ext> if there is one, else the next number after the highest
// NNN_ file of dir.
func generatedPath(dir, name, ext string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	next := 1
	for _, e := range entries {
		m := numberedRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if m[2] == name && m[3] == ext {
			return filepath.Join(dir, e.Name()), nil
		}
		n, _ := strconv.Atoi(m[1])
		next = max(next, n+1)
	}
	return filepath.Join(dir, fmt.Sprintf("%03d_%s%s", next, name, ext)), nil
}

// writeGenerated writes text as template name's file in dir, keeping a
// file that differs unless force.
func writeGenerated(dir, name, ext string, text []byte, force bool, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path, err := generatedPath(dir, name, ext)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, text):
		fmt.Fprintf(stdout, "unchanged %s\n", path)
		return nil
	case err == nil && !force:
		fmt.Fprintf(stdout, "kept %s: it differs from the generated text (hand edits, or the template changed); compare with\n  bedsctl schema gen %s | diff %s -\nand merge by hand, or overwrite it with --force\n", path, name, path)
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.WriteFile(path, text, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return nil
}

// offlineConfig returns the template folder and the stores a command that
// needs no server uses: the config's, or the defaults when there is no
// config to read.
func offlineConfig() (dir string, stores map[string]string) {
	cfg, err := config.Load("bedsctl")
	if err != nil {
		return "templates", map[string]string{config.KindMariaDB: config.KindMariaDB, config.KindMongo: config.KindMongo}
	}
	return cfg.Templates.Dir, cfg.StoreKinds()
}

func cmdSchemaCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("schema check", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dir := fset.String("dir", "", "template folder (default: the config's templates.dir)")
	cfgDir := fset.String("config-dir", "", "config folder holding beds.toml (default: BEDS_CONFIG_DIR)")
	timeout := fset.Duration("timeout", 30*time.Second, "how long to wait for the databases")
	names, err := parse(fset, args)
	if err != nil {
		return 2
	}
	cfg, ts, code := nodeTemplates(*cfgDir, *dir, names, stderr)
	if cfg == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	diffs, checked, err := checkStores(ctx, cfg, ts, stderr)
	if len(diffs) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TEMPLATE\tOBJECT\tEXPECTED\tFOUND")
		for _, d := range diffs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Template, d.Object, d.Expected, d.Found)
		}
		tw.Flush()
	}
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 1
	}
	if len(diffs) > 0 {
		fmt.Fprintf(stdout, "\n%d differences: apply the objects bedsctl schema gen writes (or mend the templates)\n", len(diffs))
		return 1
	}
	fmt.Fprintf(stdout, "%d templates agree with their databases\n", checked)
	return 0
}

// nodeTemplates loads the node's config (BEDS_CONFIG_DIR, or cfgDir) and
// the templates names selects from dir (the config's templates.dir when
// empty), printing what is wrong; a nil config comes with the exit code.
func nodeTemplates(cfgDir, dir string, names []string, stderr io.Writer) (*config.Config, []*template.Template, int) {
	environ := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	if cfgDir != "" {
		environ["BEDS_CONFIG_DIR"] = cfgDir
	}
	cfg, err := config.LoadEnv("bedsctl", environ)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return nil, nil, 1
	}
	if dir == "" {
		dir = cfg.Templates.Dir
	}
	reg := loadTemplates(dir, cfg.StoreKinds(), stderr)
	if reg == nil {
		return nil, nil, 1
	}
	ts, err := pick(reg, names)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return nil, nil, 2
	}
	return cfg, ts, 0
}

// scriptApplier is a store that applies the scripts of its kind without
// their shell (mongo.Store: mongosh).
type scriptApplier interface {
	ApplyScripts(ctx context.Context, files ...string) error
}

func cmdSchemaApply(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("schema apply", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dir := fset.String("dir", "", "template folder (default: the config's templates.dir)")
	cfgDir := fset.String("config-dir", "", "config folder holding beds.toml (default: BEDS_CONFIG_DIR)")
	deploy := fset.String("deploy", "deploy", "deploy folder holding mongo/NNN_<template>.js")
	timeout := fset.Duration("timeout", 30*time.Second, "how long to wait for the databases")
	names, err := parse(fset, args)
	if err != nil {
		return 2
	}
	cfg, ts, code := nodeTemplates(*cfgDir, *dir, names, stderr)
	if cfg == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	byStore := map[string][]string{} // store -> its scripts
	var storeNames []string
	for _, t := range ts {
		if t.StoreKind != template.StoreMongo {
			if len(names) > 0 {
				fmt.Fprintf(stderr, "skipped %s: %s files are applied with the database's own client (make schema)\n", t.Name, t.StoreKind)
			}
			continue
		}
		path, err := generatedPath(filepath.Join(*deploy, template.StoreMongo), t.Name, ".js")
		if err == nil {
			_, err = os.Stat(path)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bedsctl: template %s: no script to apply (%v); write it with bedsctl schema gen --out %s %s\n", t.Name, err, *deploy, t.Name)
			return 1
		}
		if _, ok := byStore[t.Store]; !ok {
			storeNames = append(storeNames, t.Store)
		}
		byStore[t.Store] = append(byStore[t.Store], path)
	}
	slices.Sort(storeNames)
	for _, name := range storeNames {
		sc := cfg.Stores[name]
		s, err := mongo.Adapter.Open(ctx, sc)
		if err == nil {
			if a, ok := s.(scriptApplier); ok {
				err = a.ApplyScripts(ctx, byStore[name]...)
			} else {
				err = fmt.Errorf("the %s adapter cannot apply scripts", sc.Kind)
			}
			s.Close()
		}
		if err != nil {
			fmt.Fprintf(stderr, "bedsctl: store %s (%s): %v\n", name, strings.Join(mongo.Adapter.Addrs(sc), ","), err)
			return 1
		}
		for _, f := range byStore[name] {
			fmt.Fprintf(stdout, "applied %s to store %s\n", f, name)
		}
	}
	return 0
}

// checkStores checks ts store by store, as a node's start-up does, and
// returns the differences and how many templates it checked. A store
// without a check (schema.Checker) is reported on stderr, not failed.
func checkStores(ctx context.Context, cfg *config.Config, ts []*template.Template, stderr io.Writer) ([]schema.Difference, int, error) {
	byStore := map[string][]*template.Template{}
	var storeNames []string
	for _, t := range ts {
		if _, ok := byStore[t.Store]; !ok {
			storeNames = append(storeNames, t.Store)
		}
		byStore[t.Store] = append(byStore[t.Store], t)
	}
	slices.Sort(storeNames)
	var (
		diffs   []schema.Difference
		checked int
		errs    []error
	)
	for _, name := range storeNames {
		sc := cfg.Stores[name]
		i := slices.IndexFunc(schemaAdapters, func(a store.Adapter) bool { return a.Kind() == sc.Kind })
		if i < 0 {
			errs = append(errs, fmt.Errorf("store %s: bedsctl has no adapter for kind %s", name, sc.Kind))
			continue
		}
		d, n, err := checkStore(ctx, schemaAdapters[i], name, sc, byStore[name], stderr)
		if err != nil {
			errs = append(errs, fmt.Errorf("store %s (%s): %w", name, strings.Join(schemaAdapters[i].Addrs(sc), ","), err))
		}
		diffs = append(diffs, d...)
		checked += n
	}
	return diffs, checked, errors.Join(errs...)
}

func checkStore(ctx context.Context, a store.Adapter, name string, sc config.Store, ts []*template.Template, stderr io.Writer) ([]schema.Difference, int, error) {
	s, err := a.Open(ctx, sc)
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		return nil, 0, err
	}
	c, ok := s.(schema.Checker)
	if !ok {
		fmt.Fprintf(stderr, "not checked: store %s (kind %s) has no schema check yet (%d templates)\n", name, sc.Kind, len(ts))
		return nil, 0, nil
	}
	diffs, err := c.CheckSchema(ctx, ts)
	return diffs, len(ts), err
}

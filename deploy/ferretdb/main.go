// Command ferretdb runs FerretDB v1.24.2 with its SQLite backend as a local
// MongoDB-wire stand-in server for BEDS tests.
//
// It exists because the machines BEDS is developed and tested on have neither
// MongoDB nor Docker, while the Mongo store's tests must talk to a real
// server. FerretDB speaks the MongoDB wire protocol, is pure Go and, with the
// SQLite backend, needs no cgo and no other server. The upstream
// cmd/ferretdb binary cannot be used as built from the Go module proxy: it
// panics at start because the generated version files are missing from the
// module zip. The embeddable package github.com/FerretDB/FerretDB/ferretdb
// skips that check, so this small main wraps it instead.
//
// This is its own module, deliberately kept outside the repository's go.work
// workspace, so that FerretDB's many dependencies never enter the product's
// modules. Build it with GOWORK=off CGO_ENABLED=0; deploy/ferretdb/run.sh
// builds, starts, checks and stops it for CI and developers.
//
// FerretDB is not MongoDB: it has no transactions, change streams, TTL or
// text indexes, and finds by _id are full scans on SQLite. Use it for
// correctness tests only, never for benchmarks.
//
// Usage:
//
//	ferretdb [-listen 127.0.0.1:27017] [-dir DIR] [-log-level warn]
//
// Logs go to stderr. The only line written to stdout is printed once the
// listener is bound:
//
//	ferretdb: listening on mongodb://127.0.0.1:27017/ (sqlite data in DIR)
//
// The process stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "beds-ferretdb-data"),
		"SQLite data directory (created if missing)")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	flag.Parse()

	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("bad -log-level %q: %w", *logLevel, err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Some dependencies log through the default logger; keep them on stderr
	// and at the same level.
	slog.SetDefault(logger)

	dataDir, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	if err = os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	// The SQLite backend wants a "file:" URI naming an existing directory,
	// with a trailing slash; url.URL escapes unusual characters in the path.
	sqliteURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dataDir) + "/"}).String()

	// ferretdb.New writes package-level state (the version info), so it is
	// called exactly once per process.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{
			TCP: *listen,
		},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// New has already bound the listener, so the address is known here.
	fmt.Printf("ferretdb: listening on %s (sqlite data in %s)\n", f.MongoDBURI(), dataDir)

	return f.Run(ctx)
}

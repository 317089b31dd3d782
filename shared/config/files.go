package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
)

// readFiles layers beds.toml and env_<Env>.toml over the defaults.
func (c *Config) readFiles() error {
	base := filepath.Join(c.Dir, "beds.toml")
	layers := []struct {
		path     string
		optional bool
	}{{base, false}, {filepath.Join(c.Dir, "env_"+c.Env+".toml"), true}}

	merged := map[string]any{}
	for _, l := range layers {
		m, err := readLayer(l.path)
		if errors.Is(err, fs.ErrNotExist) && l.optional {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("config: %s not found: set BEDS_CONFIG_DIR to the folder holding beds.toml", l.path)
		}
		if err != nil {
			return err
		}
		deepMerge(merged, m)
		c.files = append(c.files, l.path)
	}
	// Decode the merged tables over the defaults: TOML decoding sets only
	// keys that are present, and whole tables merged above.
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(merged); err != nil {
		return fmt.Errorf("config: merge: %w", err)
	}
	stores, brokers := maps.Clone(c.Stores), maps.Clone(c.Brokers)
	if _, err := toml.Decode(buf.String(), c); err != nil {
		return fmt.Errorf("config: merge: %w", err)
	}
	// Map entries decode whole; put back defaults of entries a file only
	// partly set (stores.mariadb.max_conns, say).
	c.Stores = mergeEntries(stores, c.Stores, merged["stores"])
	c.Brokers = mergeEntries(brokers, c.Brokers, merged["brokers"])
	return nil
}

// readLayer reads one file, rejecting keys the Config does not know.
func readLayer(path string) (map[string]any, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var probe Config
	md, err := toml.Decode(string(src), &probe)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("config %s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("config %s: unknown key %q", path, und[0].String())
	}
	var m map[string]any
	if _, err := toml.Decode(string(src), &m); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return m, nil
}

// deepMerge copies src into dst, merging tables key by key.
func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		sv, sok := v.(map[string]any)
		dv, dok := dst[k].(map[string]any)
		if sok && dok {
			deepMerge(dv, sv)
			continue
		}
		dst[k] = v
	}
}

// mergeEntries re-decodes each map entry over its default so a partly set
// entry keeps the default's other keys.
func mergeEntries[T any](defaults, decoded map[string]T, raw any) map[string]T {
	tables, _ := raw.(map[string]any)
	for name, v := range tables {
		def, ok := defaults[name]
		if !ok {
			continue
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(v); err != nil {
			continue
		}
		if _, err := toml.Decode(buf.String(), &def); err == nil {
			decoded[name] = def
		}
	}
	for name, def := range defaults {
		if _, ok := decoded[name]; !ok {
			decoded[name] = def
		}
	}
	return decoded
}

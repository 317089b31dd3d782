package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/beds-project/beds/shared/wire"
)

// maxBatchFile bounds the file bedsctl batch reads. Nodes refuse bodies
// over limits.max_body (1 MiB by default) anyway.
const maxBatchFile = 16 << 20

const batchUsage = `usage: bedsctl batch <file|-> [flags]

Sends the requests in file, a JSON array of request objects (- reads it
from stdin), as one request of op batch, and prints the reply: its items
answer the requests in order. Exits 1 when the reply is not ok.

Example file:
  [{"template":"users","op":"create","data":{"email":"ann@example.com","name":"Ann"}},
   {"template":"users","op":"count"}]

flags:
`

// batchCmd is what bedsctl batch was asked.
type batchCmd struct {
	sendFlags
	req *wire.Request
}

// parseBatch parses batch's arguments and reads the file they name (stdin
// for -) into the batch request to send.
func parseBatch(args []string, stdin io.Reader, stderr io.Writer) (*batchCmd, error) {
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cmd batchCmd
	cmd.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, batchUsage)
		fs.PrintDefaults()
	}
	pos, err := positional(fs, args, 1, "one file (or - for stdin)")
	if err != nil {
		return nil, err
	}
	if _, err := cmd.options(); err != nil {
		return nil, err
	}
	name, src := pos[0], stdin
	if name == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("batch file: %w", err)
		}
		defer f.Close()
		src = f
	}
	body, err := io.ReadAll(io.LimitReader(src, maxBatchFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(body) > maxBatchFile {
		return nil, fmt.Errorf("%s is larger than %d MiB: split the batch", name, maxBatchFile>>20)
	}
	if cmd.req, err = batchRequest(body); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd.req.Record = cmd.record
	return &cmd, nil
}

// batchRequest makes the batch request of items, the text of a JSON array
// of request objects, and checks it as a node's decoder would.
func batchRequest(items []byte) (*wire.Request, error) {
	const want = "want a JSON array of request objects, e.g. [{\"template\":\"users\",\"op\":\"count\"}]"
	var list []json.RawMessage
	if t := bytes.TrimSpace(items); len(t) == 0 || t[0] != '[' {
		return nil, errors.New("not a JSON array: " + want)
	}
	if err := json.Unmarshal(items, &list); err != nil {
		return nil, fmt.Errorf("not a JSON array (%w): %s", err, want)
	}
	for i, item := range list {
		if item[0] != '{' {
			return nil, fmt.Errorf("item %d is not a request object but %.40s: %s", i, item, want)
		}
	}
	body := make([]byte, 0, len(items)+32)
	body = append(body, `{"op":"batch","batch":`...)
	body = append(body, items...)
	body = append(body, '}')
	req, err := wire.DecodeRequest(body)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			return nil, errors.New(we.Message)
		}
		return nil, err
	}
	return req, nil
}

func cmdBatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, err := parseBatch(args, stdin, stderr)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	return sendAndPrint(ctx, &cmd.sendFlags, cmd.req, stdout, stderr)
}

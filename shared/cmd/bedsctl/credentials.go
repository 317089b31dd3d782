package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/beds-project/beds/shared/client"
)

// The session a command's requests go with, and the passwords login and
// user read. Rules stated once: a token or password is never printed,
// never put in an error; the session file holds only the token, mode
// 0600, in a folder bedsctl creates 0700.

// Where the session comes from.
const (
	envSession     = "BEDS_SESSION"      // a token: overrides the session file
	envSessionFile = "BEDS_SESSION_FILE" // the session file's path
)

// maxSecret bounds a password or token bedsctl reads.
const maxSecret = 4096

// sessionPath returns the session file's path: $BEDS_SESSION_FILE, else
// beds/session in the user's config folder (os.UserConfigDir:
// $XDG_CONFIG_HOME or ~/.config on Linux).
func sessionPath() (string, error) {
	if p := os.Getenv(envSessionFile); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no folder for the session file (%w): set %s", err, envSessionFile)
	}
	return filepath.Join(dir, "beds", "session"), nil
}

// storedSession is the session token requests go with.
type storedSession struct {
	token string // "" when there is none
	path  string // the session file, when the token came from it
}

// from says where the token came from, for messages.
func (s storedSession) from() string {
	if s.path != "" {
		return s.path
	}
	return envSession
}

// loadSession returns $BEDS_SESSION, else the session file's token, else
// none. A session file others may read is used with a warning on stderr.
func loadSession(stderr io.Writer) (storedSession, error) {
	if t := strings.TrimSpace(os.Getenv(envSession)); t != "" {
		return storedSession{token: t}, nil
	}
	path, err := sessionPath()
	if err != nil {
		return storedSession{}, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return storedSession{}, nil
	}
	if err != nil {
		return storedSession{}, fmt.Errorf("session file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "bedsctl: warning: others may read the session file %s (mode %04o): chmod 600 it\n", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return storedSession{}, fmt.Errorf("read the session file %s: %w", path, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" || len(b) > maxSecret {
		return storedSession{}, fmt.Errorf("the session file %s does not hold a session token: delete it and run bedsctl login", path)
	}
	return storedSession{token: token, path: path}, nil
}

// saveSession writes token to the session file, replacing it whole: the
// file is 0600, its folder created 0700 when missing.
func saveSession(path, token string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("session file folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".session-*")
	if err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	tmp := f.Name()
	_, err = f.WriteString(token + "\n")
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the session file %s: %w", path, err)
	}
	return nil
}

// removeSession deletes the session file; one already gone is fine.
func removeSession(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the session file: %w", err)
	}
	return nil
}

// dial connects to the cluster at url; the client sends the stored
// session (loadSession) with every request when session is true.
func dial(ctx context.Context, url string, session bool, stderr io.Writer) (*client.Client, storedSession, error) {
	var s storedSession
	if session {
		var err error
		if s, err = loadSession(stderr); err != nil {
			return nil, s, err
		}
	}
	c, err := client.Dial(ctx, url, client.Options{Name: "bedsctl", Channels: 1, Session: s.token, Addresses: defaultAddresses()})
	if err != nil {
		return nil, s, err
	}
	return c, s, nil
}

// errNoTerminal is returned when a password is wanted, stdin is no
// terminal, and --password-stdin was not given.
var errNoTerminal = errors.New("stdin is not a terminal to read the password from: pipe it in with --password-stdin")

// passwords reads passwords: from the terminal without echo (prompting on
// stderr), or, with --password-stdin, one a line from stdin.
type passwords struct {
	ctx       context.Context
	stdin     io.Reader
	stderr    io.Writer
	fromStdin bool
	lines     *bufio.Reader
}

// terminal returns stdin's file descriptor when it is a terminal.
func (p *passwords) terminal() (int, bool) {
	f, ok := p.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// check fails before anything is sent when a password could not be read.
func (p *passwords) check() error {
	if _, ok := p.terminal(); !ok && !p.fromStdin {
		return errNoTerminal
	}
	return nil
}

// read reads one password, prompting with prompt on a terminal. An empty
// one is refused.
func (p *passwords) read(prompt string) (string, error) {
	var (
		pw  string
		err error
	)
	if p.fromStdin {
		pw, err = p.line()
	} else {
		pw, err = p.fromTerminal(prompt)
	}
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", fmt.Errorf("%s is empty", strings.ToLower(strings.TrimSuffix(prompt, ": ")))
	}
	return pw, nil
}

// readNew reads a new password: on a terminal twice, refusing two that
// differ; from stdin once.
func (p *passwords) readNew(prompt string) (string, error) {
	pw, err := p.read(prompt)
	if err != nil || p.fromStdin {
		return pw, err
	}
	again, err := p.read("Repeat " + strings.ToLower(prompt[:1]) + prompt[1:])
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the two passwords differ: nothing was changed")
	}
	return pw, nil
}

// line reads the next line of stdin, without its line end.
func (p *passwords) line() (string, error) {
	if p.lines == nil {
		p.lines = bufio.NewReaderSize(io.LimitReader(p.stdin, 4*maxSecret), maxSecret)
	}
	b, err := p.lines.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("a password on stdin is longer than %d bytes", maxSecret)
	case errors.Is(err, io.EOF) && len(b) == 0:
		return "", errors.New("stdin ended before the password: give one a line with --password-stdin")
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// fromTerminal prompts on stderr and reads a line from the terminal with
// echo off. An interrupt (the context ends) restores the terminal and
// returns at once; the read it leaves blocked ends with the process.
func (p *passwords) fromTerminal(prompt string) (string, error) {
	fd, ok := p.terminal()
	if !ok {
		return "", errNoTerminal
	}
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	fmt.Fprint(p.stderr, prompt)
	type result struct {
		pw  []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		pw, err := term.ReadPassword(fd)
		done <- result{pw, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(p.stderr)
		if r.err != nil {
			return "", fmt.Errorf("read the password: %w", r.err)
		}
		if len(r.pw) > maxSecret {
			return "", fmt.Errorf("the password is longer than %d bytes", maxSecret)
		}
		return string(r.pw), nil
	case <-p.ctx.Done():
		term.Restore(fd, state)
		fmt.Fprintln(p.stderr)
		return "", fmt.Errorf("interrupted: %w", p.ctx.Err())
	}
}

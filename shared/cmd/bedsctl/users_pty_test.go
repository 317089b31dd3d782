//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// openPTY opens a pseudo-terminal: bedsctl gets tty as its stdin, the
// test types on master and reads there what the terminal shows.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pseudo-terminal number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal's tty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// echoes reports whether the terminal tty echoes what is typed.
func echoes(t *testing.T, tty *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// typePassword waits until bedsctl has turned the terminal's echo off to
// read a password, then types lines on it.
func typePassword(t *testing.T, master, tty *os.File, lines string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for echoes(t, tty) {
		if time.Now().After(deadline) {
			t.Fatal("bedsctl never turned the terminal's echo off to read the password")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := master.WriteString(lines); err != nil {
		t.Fatal(err)
	}
}

// shown returns what the terminal showed: the bytes waiting on master
// once the tty is closed.
func shown(t *testing.T, master, tty *os.File) string {
	t.Helper()
	tty.Close()
	if err := master.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(master) // ends with EIO once the tty is closed and all is read
	return string(b)
}

// TestPasswordFromTerminal: login and user add read passwords from a
// terminal with echo off, prompting on stderr, restore the echo, and
// user add refuses two different passwords.
func TestPasswordFromTerminal(t *testing.T) {
	url := testenv.AMQP(t)
	ter := fakeTercero(t, url)
	t.Setenv(envSessionFile, filepath.Join(t.TempDir(), "session"))

	type result struct {
		code        int
		out, errOut string
	}
	start := func(tty *os.File, args ...string) <-chan result {
		done := make(chan result, 1)
		go func() {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append(args, "--url", url, "--timeout", "10s"), tty, &out, &errOut)
			done <- result{code, out.String(), errOut.String()}
		}()
		return done
	}

	// login
	master, tty := openPTY(t)
	if !echoes(t, tty) {
		t.Fatal("a new terminal does not echo: the test would show nothing")
	}
	done := start(tty, "login", "ann")
	typePassword(t, master, tty, "pw-Kx81\n")
	r := <-done
	if r.code != 0 || r.errOut != "Password for ann: \n" || !strings.Contains(r.out, "logged in as ann") {
		t.Fatalf("login: exit %d\nstdout %q\nstderr %q", r.code, r.out, r.errOut)
	}
	if s := takeSent(t, ter); s.op != wire.OpLogin || s.data.Password != "pw-Kx81" {
		t.Fatalf("login sent %+v", s)
	}
	if !echoes(t, tty) {
		t.Error("login left the terminal's echo off")
	}
	if screen := shown(t, master, tty); strings.Contains(screen, "pw-Kx81") {
		t.Errorf("the terminal showed the password: %q", screen)
	}

	// user add: asked twice; two that differ are refused before sending.
	master, tty = openPTY(t)
	done = start(tty, "user", "add", "bob", "--roles", "member")
	typePassword(t, master, tty, "pw-bob1\npw-bob2\n")
	r = <-done
	if r.code != 2 || r.errOut != "Password for bob: \nRepeat password for bob: \nbedsctl: the two passwords differ: nothing was changed\n" {
		t.Fatalf("user add with two passwords: exit %d\nstdout %q\nstderr %q", r.code, r.out, r.errOut)
	}
	done = start(tty, "user", "add", "bob", "--roles", "member")
	typePassword(t, master, tty, "pw-bob1\npw-bob1\n")
	r = <-done
	if r.code != 0 || !strings.Contains(r.out, "added user bob (roles member)") {
		t.Fatalf("user add: exit %d\nstdout %q\nstderr %q", r.code, r.out, r.errOut)
	}
	if s := takeSent(t, ter); s.op != wire.OpRegister || s.data.User != "bob" || s.data.Password != "pw-bob1" {
		t.Fatalf("user add sent %+v (the refused add must send nothing)", s)
	}
	if screen := shown(t, master, tty); strings.Contains(screen, "pw-bob") {
		t.Errorf("the terminal showed a password: %q", screen)
	}
}

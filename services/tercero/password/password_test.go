package password

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// small are parameters cheap enough for tests.
var small = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func newHasher(t *testing.T, p Params) *Hasher {
	t.Helper()
	h, err := New(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, small)
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(enc, "horse") {
		t.Fatalf("encoded %q", enc)
	}
	again, _ := h.Hash(ctx, "correct horse battery staple")
	if again == enc {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	other := newHasher(t, Params{Time: 2, MemoryKiB: 128, Threads: 2})
	for _, tc := range []struct {
		name       string
		h          *Hasher
		password   string
		ok, rehash bool
	}{
		{"right password", h, "correct horse battery staple", true, false},
		{"wrong password", h, "correct horse battery stapler", false, false},
		{"empty password", h, "", false, false},
		{"case differs", h, "Correct horse battery staple", false, false},
		{"right password, parameters changed since", other, "correct horse battery staple", true, true},
		{"wrong password, parameters changed since", other, "wrong", false, false},
		{"too long", h, strings.Repeat("x", MaxPassword+1), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := tc.h.Verify(ctx, tc.password, enc)
			if err != nil || ok != tc.ok || rehash != tc.rehash {
				t.Errorf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tc.ok, tc.rehash)
			}
		})
	}
	// The new hash made after a rehash verifies without asking again.
	fresh, err := other.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := other.Verify(ctx, "correct horse battery staple", fresh); !ok || rehash || err != nil {
		t.Errorf("rehashed: %v %v %v", ok, rehash, err)
	}
}

func TestTampered(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, small)
	enc, err := h.Hash(ctx, "a password of some length")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(enc, "$") // "", argon2id, v=19, m=..,t=..,p=.., salt, key
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	join := func(p ...string) string { return strings.Join(p, "$") }
	for _, tc := range []struct {
		name    string
		encoded string
		err     error // nil: a plain mismatch
	}{
		{"key changed", join("", "argon2id", "v=19", parts[3], parts[4], flip(parts[5])), nil},
		{"salt changed", join("", "argon2id", "v=19", parts[3], flip(parts[4]), parts[5]), nil},
		{"time changed", join("", "argon2id", "v=19", "m=64,t=2,p=1", parts[4], parts[5]), nil},
		{"argon2i", join("", "argon2i", "v=19", parts[3], parts[4], parts[5]), ErrMalformed},
		{"version 16", join("", "argon2id", "v=16", parts[3], parts[4], parts[5]), ErrMalformed},
		{"memory huge", join("", "argon2id", "v=19", "m=99999999,t=1,p=1", parts[4], parts[5]), ErrMalformed},
		{"time huge", join("", "argon2id", "v=19", "m=64,t=1000,p=1", parts[4], parts[5]), ErrMalformed},
		{"threads zero", join("", "argon2id", "v=19", "m=64,t=1,p=0", parts[4], parts[5]), ErrMalformed},
		{"memory below 8 x threads", join("", "argon2id", "v=19", "m=8,t=1,p=2", parts[4], parts[5]), ErrMalformed},
		{"leading zero", join("", "argon2id", "v=19", "m=064,t=1,p=1", parts[4], parts[5]), ErrMalformed},
		{"parameters reordered", join("", "argon2id", "v=19", "t=1,m=64,p=1", parts[4], parts[5]), ErrMalformed},
		{"salt too short", join("", "argon2id", "v=19", parts[3], "AAAA", parts[5]), ErrMalformed},
		{"key too short", join("", "argon2id", "v=19", parts[3], parts[4], "AAAA"), ErrMalformed},
		{"padded base64", join("", "argon2id", "v=19", parts[3], parts[4]+"==", parts[5]), ErrMalformed},
		{"not base64", join("", "argon2id", "v=19", parts[3], parts[4], "!!!!!!!!!!!!!!!!!!!!!!!!"), ErrMalformed},
		{"part missing", join("", "argon2id", "v=19", parts[3], parts[5]), ErrMalformed},
		{"part more", enc + "$x", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"plain text", "a password of some length", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, "a password of some length", tc.encoded)
			if ok || rehash || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Errorf("Verify = %v, %v, %v; want false, false, %v", ok, rehash, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), parts[5]) {
				t.Errorf("error %q holds the key", err)
			}
		})
	}
}

func TestNewRefusesParams(t *testing.T) {
	for _, p := range []Params{{0, 64, 1}, {1, 64, 0}, {1, 15, 2}, {MaxTime + 1, 64, 1}, {1, MaxMemoryKiB + 1, 1}} {
		if _, err := New(p, 1); err == nil {
			t.Errorf("New(%+v) accepted", p)
		}
	}
	if _, err := New(small, 0); err == nil {
		t.Error("New with concurrent 0 accepted")
	}
}

// Spend never matches, whatever the password, and a Hash or a Verify
// waiting for a slot gives up when its context ends.
func TestSpendAndWait(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, small)
	for _, pw := range []string{"", "x", strings.Repeat("y", 100)} {
		if err := h.Spend(ctx, pw); err != nil {
			t.Errorf("Spend(%d bytes): %v", len(pw), err)
		}
	}
	one, err := New(small, 1)
	if err != nil {
		t.Fatal(err)
	}
	one.slots <- struct{}{} // every slot taken
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := one.Hash(cancelled, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash while full with an ended context: %v", err)
	}
	if _, _, err := one.Verify(cancelled, "pw", h.dummy); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify while full with an ended context: %v", err)
	}
	<-one.slots
	if _, err := one.Hash(ctx, "pw"); err != nil {
		t.Errorf("Hash with a free slot: %v", err)
	}
	if _, err := h.Hash(ctx, strings.Repeat("z", MaxPassword+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("Hash of an over-long password: %v", err)
	}
}

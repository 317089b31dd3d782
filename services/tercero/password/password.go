// Package password hashes and verifies passwords with argon2id (RFC 9106).
//
// Rules stated once:
//
//   - A hash is stored as a PHC-style string,
//     $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>, salt
//     and key in unpadded standard base64: 16 random bytes of salt and a
//     32-byte key. The string carries its parameters, so a hash made with
//     older ones still verifies, and Verify says when it should be remade.
//   - Keys are compared in constant time (crypto/subtle).
//   - A Hasher computes at most its concurrent bound of hashes at once
//     (each holds its memory); the rest wait, as long as their context
//     lets them.
//   - Nothing here logs, and no error holds a password, a salt or a key.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Sizes of the hashes a Hasher makes.
const (
	SaltLen = 16
	KeyLen  = 32
)

// Bounds on the parameters and sizes a stored hash may name: a hash
// outside them is refused as malformed rather than computed, so a
// tampered row cannot make a node spend unbounded memory or time.
const (
	MaxMemoryKiB = 4 << 20 // 4 GiB
	MaxTime      = 64
	minSalt      = 8
	maxSalt      = 64
	minKey       = 16
	maxKey       = 128
	// MaxPassword bounds the bytes of a password a Hasher takes.
	MaxPassword = 1024
)

// ErrMalformed is the error of a stored hash that is not an argon2id
// string this package can verify.
var ErrMalformed = errors.New("stored password hash is not a valid argon2id string")

// ErrTooLong is the error of a password longer than MaxPassword bytes.
var ErrTooLong = fmt.Errorf("password longer than %d bytes", MaxPassword)

// Params are the argon2id cost parameters of a hash.
type Params struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// Hasher makes and checks password hashes with its parameters. It is safe
// for concurrent use.
type Hasher struct {
	params Params
	slots  chan struct{} // one per hash computed at once
	dummy  string        // a hash of a random password with params, for Spend
}

// New returns a Hasher that makes hashes with p and computes at most
// concurrent of them at once. It computes one hash itself (the dummy
// Spend verifies against).
func New(p Params, concurrent int) (*Hasher, error) {
	if p.Time < 1 || p.Time > MaxTime || p.Threads < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB {
		return nil, fmt.Errorf("argon2 parameters time=%d memory_kib=%d threads=%d: time 1 to %d, threads at least 1, memory_kib from 8 x threads to %d",
			p.Time, p.MemoryKiB, p.Threads, MaxTime, MaxMemoryKiB)
	}
	if concurrent < 1 {
		return nil, fmt.Errorf("argon2 concurrent %d: at least 1", concurrent)
	}
	h := &Hasher{params: p, slots: make(chan struct{}, concurrent)}
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return nil, fmt.Errorf("random dummy password: %w", err)
	}
	dummy, err := h.Hash(context.Background(), string(random))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Params returns the parameters new hashes use.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the encoded argon2id hash of password with a new random
// salt. It fails when ctx ends while it waits for a slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxPassword {
		return "", ErrTooLong
	}
	salt := make([]byte, SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("random salt: %w", err)
	}
	key, err := h.key(ctx, password, salt, h.params, KeyLen)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches encoded; rehash is true when it
// matches but encoded was made with other parameters than h's (the
// caller should store a new Hash). A malformed encoded fails with
// ErrMalformed, a wait cut short by ctx with ctx's error.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	if len(password) > MaxPassword {
		return false, false, nil
	}
	got, err := h.key(ctx, password, salt, p, uint32(len(want)))
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params || len(salt) != SaltLen || len(want) != KeyLen, nil
}

// Spend verifies password against a hash of a random password made with
// h's parameters, and always reports a mismatch: a login for a user that
// does not exist costs what one for a user that does costs.
func (h *Hasher) Spend(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// key computes one argon2id key while holding a slot.
func (h *Hasher) key(ctx context.Context, password string, salt []byte, p Params, n uint32) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to hash a password: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, n), nil
}

var b64 = base64.RawStdEncoding

// encode writes the PHC string of a hash.
func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC string strictly: every part present, in order,
// parameters and sizes within this package's bounds.
func decode(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformed
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, ErrMalformed
	}
	num := func(item, name string, max uint64) (uint64, bool) {
		v, ok := strings.CutPrefix(item, name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return 0, false
		}
		n, err := strconv.ParseUint(v, 10, 32)
		return n, err == nil && n >= 1 && n <= max
	}
	m, okM := num(kv[0], "m", MaxMemoryKiB)
	t, okT := num(kv[1], "t", MaxTime)
	th, okP := num(kv[2], "p", 255)
	if !okM || !okT || !okP || m < 8*th {
		return p, nil, nil, ErrMalformed
	}
	p = Params{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(th)}
	if salt, err = b64.Strict().DecodeString(parts[4]); err != nil || len(salt) < minSalt || len(salt) > maxSalt {
		return p, nil, nil, ErrMalformed
	}
	if key, err = b64.Strict().DecodeString(parts[5]); err != nil || len(key) < minKey || len(key) > maxKey {
		return p, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}

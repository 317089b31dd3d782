package dispatch

import (
	"encoding/base64"
	"encoding/binary"
	"testing"
)

// pidSuffix is a direct reply-to suffix: base64 of a pid in Erlang's
// external term format (tag, then the node as an atom of atomTag, then
// tail), a dot and key.
func pidSuffix(tag, atomTag byte, node string, tail []byte, key string) string {
	b := []byte{131, tag, atomTag}
	if atomTag == 119 {
		b = append(b, byte(len(node)))
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(node)))
	}
	b = append(append(b, node...), tail...)
	return base64.StdEncoding.EncodeToString(b) + "." + key
}

// pidTail is a NEW_PID_EXT's number, serial and creation.
func pidTail(number, serial, creation uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, number)
	b = binary.BigEndian.AppendUint32(b, serial)
	return binary.BigEndian.AppendUint32(b, creation)
}

// TestDirectTarget: direct reply-to suffixes decoded as RabbitMQ 3.10
// decodes them. The ones refused make RabbitMQ 3.10 close the publishing
// connection (541) or drop the reply; a foreign node's hash cannot be
// told apart here.
func TestDirectTarget(t *testing.T) {
	const key = "8T4HfZRYHX50/TuEjRmRUw=="
	tail := pidTail(12355, 2, 1795771176)
	for _, tc := range []struct {
		name   string
		suffix string
		want   target
		ok     bool
	}{
		// As RabbitMQ 3.10.8 gave it to a client.
		{"given by RabbitMQ", "g1h2AA1yZXBseUA5MjQ4ODg0AAAwQwAAAAJrCUso." + key, target{9248884, 12355, 2}, true},
		{"another node", pidSuffix(88, 118, "reply@82109301", tail, key), target{82109301, 12355, 2}, true},
		{"small atom, 8-bit creation", pidSuffix(103, 119, "reply@7", tail[:9], key), target{7, 12355, 2}, true},
		{"signed, zero-padded hash", pidSuffix(88, 118, "reply@+007", tail, key), target{7, 12355, 2}, true},
		{"any node prefix", pidSuffix(88, 118, "x@7", tail, key), target{7, 12355, 2}, true},
		{"number and serial past Erlang's", pidSuffix(88, 118, "reply@7", pidTail(1<<20, 1<<20, 0), key), target{7, 1 << 20, 1 << 20}, true},

		{"not base64", "a.b", target{}, false},
		{"one part", "abc", target{}, false},
		{"three parts", pidSuffix(88, 118, "reply@7", tail, key) + ".x", target{}, false},
		{"empty pid", "." + key, target{}, false},
		{"empty key", pidSuffix(88, 118, "reply@7", tail, ""), target{}, false},
		{"key not base64", pidSuffix(88, 118, "reply@7", tail, "k!"), target{}, false},
		{"unpadded base64", "g1h2AA1yZXBseUA5MjQ4ODg0AAAwQwAAAAJrCUso"[:39] + "." + key, target{}, false},
		{"not a term", base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4}) + "." + key, target{}, false},
		{"not a pid", pidSuffix(100, 118, "reply@7", tail, key), target{}, false},
		{"latin-1 atom", pidSuffix(88, 100, "reply@7", tail, key), target{}, false},
		{"short atom", base64.StdEncoding.EncodeToString([]byte{131, 88, 118, 0, 40, 'r'}) + "." + key, target{}, false},
		{"trailing bytes", pidSuffix(88, 118, "reply@7", append(tail, 0), key), target{}, false},
		{"short tail", pidSuffix(88, 118, "reply@7", tail[:8], key), target{}, false},
		{"no @", pidSuffix(88, 118, "reply7", tail, key), target{}, false},
		{"hash not a number", pidSuffix(88, 118, "rabbit@nowhere", tail, key), target{}, false},
		{"two @", pidSuffix(88, 118, "reply@7@8", tail, key), target{}, false},
		{"negative hash", pidSuffix(88, 118, "reply@-7", tail, key), target{}, false},
		{"hash past phash2's range", pidSuffix(88, 118, "reply@134217728", tail, key), target{}, false},
		{"huge hash", pidSuffix(88, 118, "reply@99999999999999999999999", tail, key), target{}, false},
		{"invalid UTF-8 node", pidSuffix(88, 118, "reply\xff@7", tail, key), target{}, false},
		{"atom too long", pidSuffix(88, 118, string(make([]byte, 250))+"reply@7", tail, key), target{}, false},
	} {
		got, ok := directTarget(tc.suffix)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: directTarget(%q) = %+v, %v; want %+v, %v", tc.name, tc.suffix, got, ok, tc.want, tc.ok)
		}
	}
}

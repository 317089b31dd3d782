package dispatch

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beds-project/beds/shared/wire"
)

// ReplyTo refuses, as bad_request and without calling the next handler, a
// request whose reply_to names a queue the node may not publish to (see
// ReplyToAllowed): the node publishes with its own credentials, so an
// unchecked reply_to would let a caller write into any queue, beds.events
// included. A Broker never publishes to such a name: it dead-letters the
// request instead.
func ReplyTo(prefix string) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m *Message) *wire.Reply {
			if to := m.Delivery.ReplyTo; to != "" && !m.replyTo(prefix).allowed {
				return wire.ErrorReply(m.Event, replyToError(to, prefix))
			}
			return next.Handle(ctx, m)
		})
	}
}

// ReplyToAllowed reports whether the node may publish a reply to the
// queue name: RabbitMQ's direct reply-to (amq.rabbitmq.reply-to and the
// amq.rabbitmq.reply-to.<pid>.<key> names RabbitMQ gives it on delivery,
// when RabbitMQ can decode the pid: see directTarget), and, when prefix is
// set, names starting with it, except the contract's own queues.
func ReplyToAllowed(name, prefix string) bool { return checkReplyTo(name, prefix).allowed }

// replyVerdict is what a broker may do with a reply_to name.
type replyVerdict struct {
	allowed bool
	direct  bool   // a direct reply-to name with a pid (target is set)
	target  target // the pid's node and numbers, for replySide
}

// checkReplyTo decides ReplyToAllowed and keeps what it decoded, so that
// a delivery's name is decoded once (Message.replyTo).
func checkReplyTo(name, prefix string) replyVerdict {
	if name == wire.DirectReplyTo {
		return replyVerdict{allowed: true}
	}
	if suffix, ok := strings.CutPrefix(name, wire.DirectReplyTo+"."); ok {
		t, ok := directTarget(suffix)
		return replyVerdict{allowed: ok, direct: ok, target: t}
	}
	return replyVerdict{allowed: prefix != "" && strings.HasPrefix(name, prefix) && name != wire.EventsQueue && name != wire.DeadQueue}
}

func replyToError(name, prefix string) *wire.Error {
	if strings.HasPrefix(name, wire.DirectReplyTo+".") {
		return wire.FieldError(wire.CodeBadRequest, "reply_to",
			"reply_to %q is not a direct reply-to name RabbitMQ can deliver to: set reply_to to %s on a channel consuming from it, and RabbitMQ fills in the name",
			name, wire.DirectReplyTo)
	}
	where := wire.DirectReplyTo
	if prefix != "" {
		where += " or a queue named " + prefix + "..."
	}
	return wire.FieldError(wire.CodeBadRequest, "reply_to", "reply_to %q is refused: the node replies only to %s", name, where)
}

// target is the channel a direct reply-to name points at, as RabbitMQ
// decodes it: its node's hash and the pid's number and serial.
type target struct {
	node           uint32 // erlang:phash2 of the RabbitMQ node's name
	number, serial uint32
}

// Limits of a direct reply-to pid, from RabbitMQ and Erlang: erlang:phash2
// answers below 2^27, and binary_to_term refuses a pid of the local
// node's running incarnation whose number or serial is past these (seen on
// RabbitMQ 3.10.8, Erlang/OTP 25: RabbitMQ closes the connection).
const (
	nodeHashes = 1 << 27
	pidNumbers = 1 << 15
	pidSerials = 1 << 13
)

// directTarget decodes the suffix of a direct reply-to name
// (amq.rabbitmq.reply-to.<suffix>) as RabbitMQ 3.10 does
// (rabbit_direct_reply_to:decode_reply_to_v2 and pid_recomposition:
// from_binary), and reports false for a suffix whose reply RabbitMQ can
// never deliver. RabbitMQ gives out base64(pid) "." base64(key), the pid
// in Erlang's external term format naming the node "reply@<hash>". A reply
// to a suffix it cannot decode makes RabbitMQ 3.10 close the publishing
// connection with 541 INTERNAL_ERROR (RabbitMQ issues 3751, 6396), and a
// suffix without exactly two parts is dropped in silence; both are
// refused here. What it cannot tell is whether the hash names a running
// node (RabbitMQ 3.10 crashes on one that does not), nor whether Erlang
// takes the pid's number and serial: directTarget returns them for the
// broker to judge (see replySide).
//
// It is stricter than RabbitMQ only where RabbitMQ never hands such a name
// out: exactly one dot, canonical padded base64 and an ASCII key.
func directTarget(suffix string) (target, bool) {
	pid, key, ok := strings.Cut(suffix, ".")
	if !ok || pid == "" || key == "" || strings.Contains(key, ".") || !base64ish(key) {
		return target{}, false
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(pid)
	if err != nil || len(raw) < 3 || raw[0] != 131 || (raw[1] != 88 && raw[1] != 103) {
		return target{}, false // not term_to_binary of a pid (NEW_PID_EXT or PID_EXT)
	}
	var node, rest []byte
	switch raw[2] {
	case 118: // ATOM_UTF8_EXT, a 16-bit length
		if len(raw) < 5 {
			return target{}, false
		}
		n := int(binary.BigEndian.Uint16(raw[3:]))
		if len(raw) < 5+n {
			return target{}, false
		}
		node, rest = raw[5:5+n], raw[5+n:]
	case 119: // SMALL_ATOM_UTF8_EXT, an 8-bit length
		if len(raw) < 4 || len(raw) < 4+int(raw[3]) {
			return target{}, false
		}
		n := int(raw[3])
		node, rest = raw[4:4+n], raw[4+n:]
	default:
		return target{}, false
	}
	if len(rest) != 12 && len(rest) != 9 { // number, serial, 32- or 8-bit creation
		return target{}, false
	}
	// The node name becomes an atom (valid UTF-8, at most 255
	// characters), is split at its first @, and what follows is read by
	// list_to_integer and looked up among the nodes' hashes.
	if !utf8.Valid(node) || utf8.RuneCount(node) > 255 {
		return target{}, false
	}
	_, hash, ok := strings.Cut(string(node), "@")
	if !ok {
		return target{}, false
	}
	if h, found := strings.CutPrefix(hash, "+"); found {
		hash = h // list_to_integer takes a sign; a negative hash is never found
	}
	if hash == "" || strings.Trim(hash, "0123456789") != "" {
		return target{}, false
	}
	h, err := strconv.ParseUint(hash, 10, 64)
	if err != nil || h >= nodeHashes {
		return target{}, false
	}
	return target{node: uint32(h), number: binary.BigEndian.Uint32(rest), serial: binary.BigEndian.Uint32(rest[4:])}, true
}

// base64ish reports whether s holds only characters of standard base64.
func base64ish(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

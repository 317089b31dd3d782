package account

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/beds-project/beds/shared/wire"
)

// Bounds on the members of a request's data.
const (
	MaxName     = 64   // characters of a login name (accounts.name max)
	MaxPassword = 1024 // bytes of a password (password.MaxPassword)
	MaxRoles    = 16   // roles of one user
	MaxRole     = 32   // characters of one role name
	MaxClient   = 128  // characters of data client
	sessionLen  = 64   // hex characters of a session ID
	maxData     = 8192 // bytes of the whole data member
)

// decodeData reads a request's data strictly into a wire.UserData: an
// object with the members UserData declares, each of its type, within
// the bounds above. Errors name the member and never hold its value.
func decodeData(raw json.RawMessage) (*wire.UserData, error) {
	d := &wire.UserData{}
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return d, nil
	}
	if len(raw) > maxData {
		return nil, wire.FieldError(wire.CodeTooLarge, "data", "data is %d bytes: at most %d", len(raw), maxData)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		return nil, dataError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, wire.FieldError(wire.CodeBadRequest, "data", "data holds more than one JSON value")
	}
	switch {
	case d.User != "":
		if err := checkName(d.User); err != nil {
			return nil, err
		}
	}
	if len(d.Password) > MaxPassword || len(d.NewPassword) > MaxPassword {
		return nil, wire.FieldError(wire.CodeTooLarge, "data", "a password is longer than %d bytes", MaxPassword)
	}
	if d.Roles != nil {
		if err := checkRoles(d.Roles); err != nil {
			return nil, err
		}
	}
	if d.Session != "" && !isSessionID(d.Session) {
		return nil, wire.FieldError(wire.CodeBadValue, "data.session", "session is a session's ID: %d lowercase hex characters (as sessions lists them), not a token", sessionLen)
	}
	if utf8.RuneCountInString(d.Client) > MaxClient || !printable(d.Client) {
		return nil, wire.FieldError(wire.CodeBadValue, "data.client", "client names the end client in at most %d printable characters", MaxClient)
	}
	return d, nil
}

// dataError turns a decoding failure into the contract's error, naming the
// member at fault but never quoting the data.
func dataError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		name := te.Field
		if name == "" {
			return wire.FieldError(wire.CodeBadRequest, "data", "data must be an object with members user, password, new_password, roles, session, client")
		}
		return wire.FieldError(wire.CodeBadValue, "data."+name, "data.%s takes %s, not a JSON %s", name, typeName(name), te.Value)
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return wire.FieldError(wire.CodeBadRequest, "data", "data is not valid JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(name) > 40 || !printable(name) {
			name = "(a long or unprintable name)"
		}
		return wire.FieldError(wire.CodeBadField, "data", "data has no member %q: its members are user, password, new_password, roles, session, client", name)
	}
	return wire.FieldError(wire.CodeBadRequest, "data", "data must be an object with members user, password, new_password, roles, session, client")
}

func typeName(member string) string {
	if member == "roles" || strings.HasPrefix(member, "roles") {
		return "an array of role names"
	}
	return "a string"
}

// checkName checks a login name: 1 to MaxName printable characters,
// without spaces at its ends.
func checkName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > MaxName || !printable(name) || strings.TrimSpace(name) != name {
		return wire.FieldError(wire.CodeBadValue, "data.user", "user is a login name of 1 to %d printable characters, without spaces at its ends", MaxName)
	}
	return nil
}

// checkRoles checks a list of role names: 1 to MaxRoles of them, each 1 to
// MaxRole characters of a-z, 0-9, _ and -, none twice.
func checkRoles(roles []string) error {
	if len(roles) == 0 || len(roles) > MaxRoles {
		return wire.FieldError(wire.CodeBadValue, "data.roles", "roles is a list of 1 to %d role names", MaxRoles)
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if r == "" || len(r) > MaxRole || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			return wire.FieldError(wire.CodeBadValue, "data.roles", "a role name is 1 to %d characters of a-z, 0-9, _ and -", MaxRole)
		}
		if seen[r] {
			return wire.FieldError(wire.CodeBadValue, "data.roles", "role %s is listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

// checkPassword checks a new password against the minimum length.
func checkPassword(pw string, min int, field string) error {
	if n := utf8.RuneCountInString(pw); n < min {
		return wire.FieldError(wire.CodeBadValue, field, "a new password needs at least %d characters", min)
	}
	if !utf8.ValidString(pw) {
		return wire.FieldError(wire.CodeBadValue, field, "a new password must be valid UTF-8")
	}
	return nil
}

func isSessionID(s string) bool {
	if len(s) != sessionLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// only lists what a tercero request may carry besides op and data, for
// the message refusing the rest.
func checkMembers(req *wire.Request) error {
	var extra string
	switch {
	case len(req.Filter) > 0:
		extra = "filter"
	case len(req.Fields) > 0:
		extra = "fields"
	case len(req.Sort) > 0:
		extra = "sort"
	case req.Limit != 0:
		extra = "limit"
	case req.Offset != 0:
		extra = "offset"
	case len(req.Include) > 0:
		extra = "include"
	case req.Record:
		extra = "record"
	default:
		return nil
	}
	return wire.FieldError(wire.CodeBadRequest, extra, "%s is a user or session op: it takes op and data only, not %s", req.Op, extra)
}

// notTercero is the error of a data op that reached tercero's queue.
func notTercero(req *wire.Request) error {
	return wire.Errorf(wire.CodeBadRequest, "op %s is not a user or session op: tercero serves %s; publish %s with routing key %s, to queue %s",
		req.Op, opsList(), req.Op, req.RoutingKey(), req.Op.Queue())
}

func opsList() string {
	var b strings.Builder
	for i, op := range append(append([]wire.Op{}, wire.UserOps...), wire.SessionOps...) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, op)
	}
	return b.String()
}

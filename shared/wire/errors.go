package wire

import (
	"errors"
	"fmt"
)

// Code is a stable error code of the contract.
type Code string

// Request codes: the request is wrong and will fail again unchanged.
const (
	CodeBadRequest      Code = "bad_request"
	CodeUnknownTemplate Code = "unknown_template"
	CodeOpNotAllowed    Code = "op_not_allowed"
	CodeBadField        Code = "bad_field"
	CodeBadValue        Code = "bad_value"
	CodeTooLarge        Code = "too_large"
)

// Data codes: the request was valid but the stored data disagreed.
const (
	CodeConflict Code = "conflict"
	CodeNotFound Code = "not_found"
)

// Access codes: who is asking decides.
const (
	// CodeUnauthenticated: the request needs a session and carries none,
	// or one that is unknown, expired or revoked; or a login failed. Log
	// in (again).
	CodeUnauthenticated Code = "unauthenticated"
	// CodeForbidden: the caller is known but its roles do not allow the
	// op on the template, or the rows are another owner's.
	CodeForbidden Code = "forbidden"
	// CodeRateLimited: too many failed logins for the account or the
	// caller; the message says when to try again.
	CodeRateLimited Code = "rate_limited"
)

// System codes: try again later.
const (
	CodeUnavailable Code = "unavailable"
	CodeTimeout     Code = "timeout"
	CodeInternal    Code = "internal"
)

// Class groups codes by what a caller should do about them.
type Class string

// The classes of codes.
const (
	ClassRequest Class = "request" // fix the request
	ClassData    Class = "data"    // the data disagreed; retrying the same request fails the same way
	ClassAccess  Class = "access"  // log in, ask for the role, or wait out the attempt limit; not retried as is
	ClassSystem  Class = "system"  // try again later
)

// Class returns the group a code belongs to; unknown codes count as system.
func (c Code) Class() Class {
	switch c {
	case CodeBadRequest, CodeUnknownTemplate, CodeOpNotAllowed, CodeBadField, CodeBadValue, CodeTooLarge:
		return ClassRequest
	case CodeConflict, CodeNotFound:
		return ClassData
	case CodeUnauthenticated, CodeForbidden, CodeRateLimited:
		return ClassAccess
	}
	return ClassSystem
}

// Retryable reports whether the same request may succeed later.
func (c Code) Retryable() bool { return c.Class() == ClassSystem }

// Codes lists every code of the contract.
var Codes = []Code{
	CodeBadRequest, CodeUnknownTemplate, CodeOpNotAllowed, CodeBadField, CodeBadValue, CodeTooLarge,
	CodeConflict, CodeNotFound,
	CodeUnauthenticated, CodeForbidden, CodeRateLimited,
	CodeUnavailable, CodeTimeout, CodeInternal,
}

// Error is the error of a reply. It is also a Go error, so code paths can
// return it and the dispatcher can put it on the wire unchanged.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Field names the request field or template field at fault, if any.
	Field string `json:"field,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf builds an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError builds an Error about one field.
func FieldError(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Field: field}
}

// AsError returns the contract error inside err and true, or an internal
// error with a generic message and false when err carries none. The
// generic message keeps store and driver details (hosts, statements) off the
// wire; the caller logs err itself.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return &Error{Code: CodeInternal, Message: "internal error: the node's log has the details under this event ID"}, false
}

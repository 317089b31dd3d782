package mongo

import (
	"context"
	"errors"
	"net"
	"syscall"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

// MongoDB server error codes the adapter maps to contract codes.
const (
	codeBadValue             = 2
	codeHostUnreachable      = 6
	codeHostNotFound         = 7
	codeMaxTimeMSExpired     = 50
	codeNetworkTimeout       = 89
	codeShutdownInProgress   = 91
	codeWriteConflict        = 112
	codeDocumentValidation   = 121
	codePrimarySteppedDown   = 189
	codeExceededTimeLimit    = 262
	codeSocketException      = 9001
	codeNotWritablePrimary   = 10107
	codeBSONObjectTooLarge   = 10334
	codeInterruptedShutdown  = 11600
	codeInterruptedReplState = 11602
	codeNotPrimaryNoSecOk    = 13435
	codeNotPrimaryOrSecond   = 13436
	codeDocumentTooLarge     = 17419
	codeDocumentTooLarge2    = 17420
)

// unavailableCodes are server errors that mean "this server cannot serve
// the request now; another attempt may succeed".
var unavailableCodes = []int{
	codeHostUnreachable, codeHostNotFound, codeShutdownInProgress, codeWriteConflict,
	codePrimarySteppedDown, codeSocketException, codeNotWritablePrimary,
	codeInterruptedShutdown, codeInterruptedReplState, codeNotPrimaryNoSecOk, codeNotPrimaryOrSecond,
}

// classify maps driver and server errors to contract errors where the
// contract has a code for them; anything else stays an internal error and
// is returned unchanged for the node to log. q is nil for Ping.
//
// Messages never name the server: hosts stay off the wire.
func classify(q *store.Query, err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return err
	}
	if mongo.IsDuplicateKeyError(err) {
		what := "record"
		if q != nil {
			what = q.Template.Name + " record"
		}
		return wire.Errorf(wire.CodeConflict, "a %s with that key or unique value already exists", what)
	}
	var se mongo.ServerError
	// A command cut off by the context (the driver labels it a network
	// error) is the deadline's doing, not the server's: see below.
	if errors.As(err, &se) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		switch {
		case se.HasErrorCode(codeDocumentValidation):
			return wire.Errorf(wire.CodeBadValue, "the record fails the collection's validation rules")
		case se.HasErrorCode(codeBSONObjectTooLarge), se.HasErrorCode(codeDocumentTooLarge), se.HasErrorCode(codeDocumentTooLarge2):
			return wire.Errorf(wire.CodeTooLarge, "the record is larger than the database accepts")
		case se.HasErrorCode(codeMaxTimeMSExpired), se.HasErrorCode(codeExceededTimeLimit), se.HasErrorCode(codeNetworkTimeout):
			return wire.Errorf(wire.CodeTimeout, "the database stopped the operation at the request's deadline")
		case se.HasErrorLabel("RetryableWriteError"), se.HasErrorLabel("TransientTransactionError"), hasAnyCode(se, unavailableCodes):
			return wire.Errorf(wire.CodeUnavailable, "database busy or going away")
		case se.HasErrorCode(codeBadValue):
			// Reached only for values the adapter let through; still the
			// request's fault rather than the node's.
			return wire.Errorf(wire.CodeBadValue, "the database refused a value of the request")
		}
	}
	var ae *auth.Error
	switch {
	case errors.As(err, &ae):
		// Wrong credentials do not heal by retrying: internal, logged.
		return err
	case errors.Is(err, driver.ErrDocumentTooLarge):
		return wire.Errorf(wire.CodeTooLarge, "the record is larger than the database accepts")
	case errors.As(err, &topology.ServerSelectionError{}):
		// Checked before deadlines: the selection timeout is a context
		// deadline inside the driver.
		return wire.Errorf(wire.CodeUnavailable, "database unreachable")
	case errors.As(err, &topology.WaitQueueTimeoutError{}):
		return wire.Errorf(wire.CodeUnavailable, "database busy: no free connection")
	case errors.Is(err, mongo.ErrClientDisconnected):
		return wire.Errorf(wire.CodeUnavailable, "the store is closed")
	case errors.Is(err, context.DeadlineExceeded), mongo.IsTimeout(err):
		return wire.Errorf(wire.CodeTimeout, "the request's deadline passed before the database answered")
	case errors.Is(err, context.Canceled):
		return wire.Errorf(wire.CodeUnavailable, "the node stopped the request")
	case mongo.IsNetworkError(err), errors.As(err, &topology.ConnectionError{}),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return wire.Errorf(wire.CodeUnavailable, "database connection lost")
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return wire.Errorf(wire.CodeUnavailable, "database unreachable")
	}
	return err
}

func hasAnyCode(se mongo.ServerError, codes []int) bool {
	for _, c := range codes {
		if se.HasErrorCode(c) {
			return true
		}
	}
	return false
}

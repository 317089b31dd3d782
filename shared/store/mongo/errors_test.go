package mongo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/beds-project/beds/shared/wire"
)

func TestClassify(t *testing.T) {
	tpl := testTemplate(t, "people")
	q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpCount})
	wrap := func(err error) error { return fmt.Errorf("read people: %w", err) }
	plain := errors.New("something odd")
	tests := []struct {
		name string
		err  error
		code wire.Code // "" : returned unchanged
	}{
		{"contract error", wire.Errorf(wire.CodeNotFound, "x"), wire.CodeNotFound},
		{"duplicate key", wrap(mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000, Message: "E11000 duplicate key"}}}), wire.CodeConflict},
		{"duplicate key command", mongo.CommandError{Code: 11000}, wire.CodeConflict},
		{"validation", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 121}}}, wire.CodeBadValue},
		{"too large", mongo.CommandError{Code: 10334}, wire.CodeTooLarge},
		{"max time", mongo.CommandError{Code: 50}, wire.CodeTimeout},
		{"shutting down", mongo.CommandError{Code: 91}, wire.CodeUnavailable},
		{"stepped down", wrap(mongo.CommandError{Code: 189}), wire.CodeUnavailable},
		{"retryable label", mongo.CommandError{Code: 1, Labels: []string{"RetryableWriteError"}}, wire.CodeUnavailable},
		{"bad value", mongo.CommandError{Code: 2}, wire.CodeBadValue},
		{"other server error", mongo.CommandError{Code: 13, Message: "unauthorized"}, ""},
		{"server selection", wrap(topology.ServerSelectionError{Wrapped: context.DeadlineExceeded}), wire.CodeUnavailable},
		{"pool", wrap(topology.WaitQueueTimeoutError{Wrapped: context.DeadlineExceeded}), wire.CodeUnavailable},
		{"closed", wrap(mongo.ErrClientDisconnected), wire.CodeUnavailable},
		{"deadline", wrap(context.DeadlineExceeded), wire.CodeTimeout},
		{"deadline mid-command", wrap(mongo.CommandError{Labels: []string{"NetworkError", "RetryableWriteError"}, Wrapped: context.DeadlineExceeded}), wire.CodeTimeout},
		{"canceled mid-command", wrap(mongo.CommandError{Labels: []string{"NetworkError", "RetryableWriteError"}, Wrapped: context.Canceled}), wire.CodeUnavailable},
		{"canceled", wrap(context.Canceled), wire.CodeUnavailable},
		{"connection", wrap(topology.ConnectionError{Wrapped: syscall.ECONNRESET}), wire.CodeUnavailable},
		{"refused", wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), wire.CodeUnavailable},
		{"auth", wrap(topology.ConnectionError{Wrapped: &auth.Error{}}), ""},
		{"plain", plain, ""},
	}
	for _, tc := range tests {
		got := classify(q, tc.err)
		var we *wire.Error
		isWire := errors.As(got, &we)
		switch {
		case tc.code == "" && (isWire || got.Error() != tc.err.Error()):
			t.Errorf("%s: classify = %v, want the error unchanged", tc.name, got)
		case tc.code != "" && (!isWire || we.Code != tc.code):
			t.Errorf("%s: classify = %v, want code %s", tc.name, got, tc.code)
		}
	}
	if got := classify(nil, mongo.CommandError{Code: 11000}); got.(*wire.Error).Code != wire.CodeConflict {
		t.Errorf("classify without query = %v", got)
	}
}

// Package ipl is a node's Initial Program Load and lifecycle: the ordered
// start-up steps, the running state, and the graceful drain.
//
// Start-up runs these steps in order, logging each with its duration; the
// first failure stops the node with the step, its target (host:port, never
// a password) and the cause:
//
//	config      layered TOML and BEDS_* variables
//	logging     slog, text in dev and JSON elsewhere; also slog's default
//	            logger, so packages logging through it carry the node
//	templates   parse and validate every template file (of templates.dir,
//	            or the role's own TemplateFS)
//	amqp        TCP reachability of RabbitMQ
//	topology    log in, declare exchanges and queues
//	stores      TCP reachability of every store a template uses
//	pools       open each store's pool with its adapter and ping it
//	schema      compare each store's database with the templates it serves
//	            (a store whose adapter implements schema.Checker), stopping
//	            on a difference unless templates.check = "warn"
//	lineage     open the lineage recorder, when [lineage] store is set
//	brokers     build the role's brokers
//	ready       serve /healthz, /readyz, /metrics; start the brokers
//
// What a node prepares is what its Role declares: a role that serves no
// templates skips templates, stores, pools and schema, and opens no
// database. The IPL only sequences the steps; each store adapter owns how
// its stores are addressed, opened and checked.
//
// A running node is ready (/readyz answers 200) once every broker consumes.
// SIGTERM or SIGINT drains: brokers stop consuming, finish and acknowledge
// what they hold, and the node closes its stores. A second signal, or the
// configured shutdown timeout, forces the exit.
package ipl

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
)

// Service is a long-running part of a node, such as a broker.
type Service interface {
	// Name identifies the service in logs.
	Name() string
	// Run works until ctx ends, then stops cleanly and returns.
	Run(ctx context.Context) error
	// Ready reports whether the service is doing its job.
	Ready() bool
}

// Role declares what a node of one role needs from the shared runtime; the
// IPL prepares exactly that, in its fixed order, and knows no role by name.
type Role struct {
	Name string
	// Templates says the role serves templates: the IPL loads the template
	// folder and refuses to start without a template file in it. A role
	// that does not skips the templates, stores and pools steps.
	Templates bool
	// TemplateFS, when set, holds the role's own templates (*.toml at its
	// top, typically embedded in the binary): the templates step loads
	// them instead of templates.dir, and the stores, pools and schema
	// steps then serve them like any templates. Lineage stays off unless
	// Templates is set too.
	TemplateFS fs.FS
	// Adapters are the store kinds the role links (mariadb.Adapter,
	// mongo.Adapter). The IPL opens every store the templates use with the
	// adapter of its kind; a store of a kind the role does not link stops
	// the IPL.
	Adapters []store.Adapter
	// Services builds the role's brokers once the runtime is up. A role
	// without brokers of its own leaves it nil.
	Services func(rt *Runtime) ([]Service, error)
}

// adapter returns the role's adapter for kind, or nil.
func (r Role) adapter(kind string) store.Adapter {
	for _, a := range r.Adapters {
		if a.Kind() == kind {
			return a
		}
	}
	return nil
}

// Runtime is what every role shares once the IPL has run.
type Runtime struct {
	Role      string
	Config    *config.Config
	Log       *slog.Logger
	Templates *template.Registry
	Stores    map[string]store.Store // the stores templates use, by name
	Metrics   *prometheus.Registry
	requests  *Metrics // the request metrics every broker reports to
	// Lineage is where lineage is recorded and read, nil when
	// [lineage] store is off or the role serves no templates; Recorder writes to it in the background and
	// is one of the node's services when set.
	Lineage  lineage.Log
	Recorder *lineage.Recorder
}

// StepError is a failed IPL step.
type StepError struct {
	Step   string
	Target string // host:port or path; never a secret
	Err    error
}

func (e *StepError) Error() string {
	if e.Target != "" {
		return fmt.Sprintf("IPL step %s (%s): %v", e.Step, e.Target, e.Err)
	}
	return fmt.Sprintf("IPL step %s: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// step runs one IPL step and logs it with its duration.
func step(ctx context.Context, log *slog.Logger, name, target string, fn func(context.Context) error) error {
	start := time.Now()
	if err := fn(ctx); err != nil {
		return &StepError{Step: name, Target: target, Err: err}
	}
	if log != nil {
		log.Info("ipl", "step", name, "target", target, "took", time.Since(start).Round(time.Microsecond))
	}
	return nil
}

// Topology returns the queue topology the config asks for.
func (rt *Runtime) Topology() mq.Topology {
	a := rt.Config.AMQP
	return mq.Topology{QueueType: a.QueueType, DeliveryLimit: a.DeliveryLimit, QuorumSize: a.QuorumSize, DeadMaxLength: a.DeadMaxLength, DeadTTL: a.DeadTTL.D()}
}

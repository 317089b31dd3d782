package ipl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
)

// Node is a booted node: its runtime, services and ops endpoint.
type Node struct {
	rt       *Runtime
	services []Service
	http     *http.Server
	listener net.Listener
	booted   atomic.Bool
	stopping atomic.Bool
	storesUp atomic.Bool // every store answered its last ping
}

// Boot runs the IPL for role with the given environment (nil: the process
// environment) and returns a node ready to Run. On failure it closes
// whatever it opened.
func Boot(ctx context.Context, role Role, environ map[string]string) (_ *Node, err error) {
	rt := &Runtime{Role: role.Name, Stores: map[string]store.Store{}, Metrics: prometheus.NewRegistry()}
	n := &Node{rt: rt}
	defer func() {
		if err != nil {
			n.close()
		}
	}()

	if err := step(ctx, nil, "config", "", func(context.Context) error {
		var err error
		if environ == nil {
			rt.Config, err = config.Load(role.Name)
		} else {
			rt.Config, err = config.LoadEnv(role.Name, environ)
		}
		return err
	}); err != nil {
		return nil, err
	}
	cfg := rt.Config

	if err := step(ctx, nil, "logging", "", func(context.Context) error {
		level, err := config.ParseLevel(cfg.Log.Level)
		if err != nil {
			return err
		}
		opts := &slog.HandlerOptions{Level: level}
		var h slog.Handler = slog.NewJSONHandler(os.Stderr, opts)
		if cfg.Log.Format == "text" {
			h = slog.NewTextHandler(os.Stderr, opts)
		}
		rt.Log = slog.New(h).With("node", cfg.Node.Name, "role", role.Name)
		// What logs through slog's default (a store's replica checker)
		// then carries the node's fields and format too.
		slog.SetDefault(rt.Log)
		return nil
	}); err != nil {
		return nil, err
	}
	log := rt.Log
	log.Info("ipl", "step", "config", "config", cfg)

	tplTarget := cfg.Templates.Dir
	switch {
	case role.TemplateFS != nil:
		tplTarget = "the " + role.Name + "'s own templates"
	case !role.Templates:
		tplTarget = "none: the role serves no templates"
	}
	if err := step(ctx, log, "templates", tplTarget, func(context.Context) error {
		var err error
		if role.TemplateFS != nil {
			if rt.Templates, err = template.LoadFS(role.TemplateFS, cfg.StoreKinds()); err != nil {
				return err
			}
			if rt.Templates.Len() == 0 {
				return fmt.Errorf("the %s's own templates hold no template file", role.Name)
			}
			log.Info("templates loaded", "count", rt.Templates.Len(), "names", rt.Templates.Names())
			for _, w := range rt.Templates.Warnings() {
				log.Warn("template lint", "warning", w.Error())
			}
			return nil
		}
		if !role.Templates {
			rt.Templates, err = template.NewRegistry()
			return err
		}
		if rt.Templates, err = template.Load(cfg.Templates.Dir, cfg.StoreKinds()); err != nil {
			return err
		}
		if rt.Templates.Len() == 0 {
			return fmt.Errorf("no template files: the %s serves templates; set BEDS_TEMPLATE_DIR", role.Name)
		}
		log.Info("templates loaded", "count", rt.Templates.Len(), "names", rt.Templates.Names())
		for _, w := range rt.Templates.Warnings() {
			log.Warn("template lint", "warning", w.Error())
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rt.requests = NewMetrics(rt.Metrics, rt.Templates)

	// The stores the templates use, and the one lineage is recorded in,
	// for a role that serves templates.
	lineageOn := role.Templates && cfg.Lineage.Enabled()
	used := rt.Templates.Stores()
	if lineageOn && !slices.Contains(used, cfg.Lineage.Store) {
		used = append(used, cfg.Lineage.Store)
	}
	// BEDS_ENV=prod: no known default credentials in a store this node
	// opens, refused before it connects to anything.
	if err := cfg.CheckStoreCredentials(used); err != nil {
		return nil, &StepError{Step: "stores", Err: err}
	}

	dial := n.DialConfig("ipl")
	// Every node of the cluster, the URL's first: any one that answers
	// will do (Dial goes on to the next when one does not).
	amqpAddr := strings.Join(dial.Addrs(), ",")
	if err := step(ctx, log, "amqp", amqpAddr, func(ctx context.Context) error {
		return mq.ReachableAny(ctx, dial.Addrs(), cfg.AMQP.ConnectTimeout.D())
	}); err != nil {
		return nil, err
	}
	if err := step(ctx, log, "topology", amqpAddr, func(ctx context.Context) error {
		conn, err := mq.Dial(ctx, dial)
		if err != nil {
			return err
		}
		defer conn.Close()
		return mq.Declare(conn, rt.Topology(), log)
	}); err != nil {
		return nil, err
	}

	// The stores the templates use, each with its role's adapter.
	adapters := make([]store.Adapter, len(used))
	for i, name := range used {
		sc := cfg.Stores[name]
		if adapters[i] = role.adapter(sc.Kind); adapters[i] == nil {
			return nil, &StepError{Step: "stores", Target: name,
				Err: fmt.Errorf("store %s is of kind %s, which the %s role does not link", name, sc.Kind, role.Name)}
		}
	}
	for i, name := range used {
		for _, addr := range adapters[i].Addrs(cfg.Stores[name]) {
			if err := step(ctx, log, "stores", name+" "+addr, func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, cfg.AMQP.ConnectTimeout.D())
				defer cancel()
				return mq.Reachable(ctx, addr)
			}); err != nil {
				return nil, err
			}
		}
	}
	for i, name := range used {
		sc := cfg.Stores[name]
		if err := step(ctx, log, "pools", name+" "+strings.Join(adapters[i].Addrs(sc), ","), func(ctx context.Context) error {
			s, err := adapters[i].Open(ctx, sc)
			if err != nil {
				return err
			}
			rt.Stores[name] = s
			ctx, cancel := context.WithTimeout(ctx, cfg.AMQP.ConnectTimeout.D())
			defer cancel()
			return s.Ping(ctx)
		}); err != nil {
			return nil, err
		}
	}

	if err := rt.checkSchemas(ctx, used); err != nil {
		return nil, err
	}

	if lineageOn {
		if err := step(ctx, log, "lineage", cfg.Lineage.Store, func(ctx context.Context) error {
			return rt.openLineage(ctx)
		}); err != nil {
			return nil, err
		}
	}

	if err := step(ctx, log, "brokers", role.Name, func(context.Context) error {
		if role.Services == nil {
			return nil
		}
		var err error
		n.services, err = role.Services(rt)
		return err
	}); err != nil {
		return nil, err
	}

	if err := step(ctx, log, "ready", cfg.HTTP.Addr, n.listen); err != nil {
		return nil, err
	}
	n.storesUp.Store(true)
	n.booted.Store(true)
	return n, nil
}

// checkSchemas runs the schema step for every store in stores that serves
// templates and can compare its database with them (schema.Checker): in
// mode strict a difference stops the IPL, naming the template, the object
// and the difference; in mode warn each is logged and the node starts.
func (rt *Runtime) checkSchemas(ctx context.Context, stores []string) error {
	cfg, log := rt.Config, rt.Log
	mode, err := schema.ParseMode(cfg.Templates.Check)
	if err != nil {
		return &StepError{Step: "schema", Err: fmt.Errorf("templates.check %w", err)}
	}
	for _, name := range stores {
		var ts []*template.Template
		for _, n := range rt.Templates.Names() {
			if t := rt.Templates.Get(n); t.Store == name {
				ts = append(ts, t)
			}
		}
		c, ok := rt.Stores[name].(schema.Checker)
		if len(ts) == 0 || !ok {
			if len(ts) > 0 {
				log.Info("ipl", "step", "schema", "target", name, "checked", false, "reason", "its kind has no schema check")
			}
			continue
		}
		if err := step(ctx, log, "schema", name, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, cfg.Limits.RequestTimeout.D())
			defer cancel()
			diffs, err := c.CheckSchema(ctx, ts)
			if err != nil {
				return err
			}
			if len(diffs) == 0 {
				return nil
			}
			if mode == schema.Strict {
				return &schema.MismatchError{Store: name, Diffs: diffs}
			}
			for _, d := range diffs {
				log.Warn("database disagrees with a template; starting anyway (templates.check = warn)", "store", name,
					"template", d.Template, "object", d.Object, "expected", d.Expected, "found", d.Found)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// Runtime returns the node's runtime.
func (n *Node) Runtime() *Runtime { return n.rt }

// Addr returns the ops endpoint's address, or "" when disabled.
func (n *Node) Addr() string {
	if n.listener == nil {
		return ""
	}
	return n.listener.Addr().String()
}

// DialConfig returns how a part of this node named purpose connects to
// RabbitMQ.
func (n *Node) DialConfig(purpose string) mq.DialConfig {
	return DialConfig(n.rt, purpose)
}

// DialConfig returns how a part of the node named purpose connects to
// RabbitMQ.
func DialConfig(rt *Runtime, purpose string) mq.DialConfig {
	cfg := rt.Config
	return mq.DialConfig{
		URL: cfg.AMQP.URL, Addresses: cfg.AMQP.Addresses, Name: cfg.Node.Name + "/" + purpose,
		Timeout: cfg.AMQP.ConnectTimeout.D(), Heartbeat: cfg.AMQP.Heartbeat.D(),
	}
}

// Ready reports whether every service is doing its job.
func (n *Node) Ready() bool {
	if !n.booted.Load() || n.stopping.Load() || !n.storesUp.Load() {
		return false
	}
	for _, s := range n.services {
		if !s.Ready() {
			return false
		}
	}
	return true
}

// Run runs the services until ctx ends, then drains them within the
// configured shutdown timeout and closes the node. force, when it
// delivers, cuts the drain short.
func (n *Node) Run(ctx context.Context, force <-chan struct{}) error {
	log := n.rt.Log
	var wg sync.WaitGroup
	errs := make(chan error, len(n.services))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for _, s := range n.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(runCtx); err != nil {
				errs <- fmt.Errorf("%s: %w", s.Name(), err)
				stop()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.watchStores(runCtx, time.Second)
	}()
	go func() {
		for !n.Ready() && runCtx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		if runCtx.Err() == nil {
			log.Info("ipl", "step", "ready", "services", len(n.services))
		}
	}()

	<-runCtx.Done()
	n.stopping.Store(true)
	log.Info("stopping", "timeout", n.rt.Config.Shutdown.Timeout.D())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var runErr error
	select {
	case <-done:
	case <-force:
		runErr = errors.New("drain cut short by a second signal")
	case <-time.After(n.rt.Config.Shutdown.Timeout.D()):
		runErr = errors.New("drain did not finish within shutdown.timeout")
	}
	close(errs)
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	n.close()
	if runErr != nil {
		log.Error("stopped", "err", runErr)
		return runErr
	}
	log.Info("stopped")
	return nil
}

// watchStores pings every store each interval until ctx ends; the node is
// not ready while one does not answer, and ready again once all do.
func (n *Node) watchStores(ctx context.Context, interval time.Duration) {
	down := map[string]bool{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for name, s := range n.rt.Stores {
			pctx, cancel := context.WithTimeout(ctx, interval)
			err := s.Ping(pctx)
			cancel()
			switch {
			case err != nil && !down[name] && ctx.Err() == nil:
				down[name] = true
				n.rt.Log.Warn("store unavailable; not ready", "store", name, "err", err)
			case err == nil && down[name]:
				delete(down, name)
				n.rt.Log.Info("store available again", "store", name)
			}
		}
		n.storesUp.Store(len(down) == 0)
	}
}

func (n *Node) close() {
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = n.http.Shutdown(ctx)
	}
	n.closeStores()
}

func (n *Node) closeStores() {
	for name, s := range n.rt.Stores {
		if err := s.Close(); err != nil && n.rt.Log != nil {
			n.rt.Log.Warn("closing store", "store", name, "err", err)
		}
	}
}

// listen starts the ops endpoint.
func (n *Node) listen(context.Context) error {
	reg := n.rt.Metrics
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	addr := n.rt.Config.HTTP.Addr
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	n.listener = ln
	n.http = &http.Server{Handler: n.opsHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.rt.Log.Error("ops endpoint stopped", "err", err)
		}
	}()
	return nil
}

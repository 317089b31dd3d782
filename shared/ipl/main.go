package ipl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/beds-project/beds/shared/config"
)

// Main runs a node of role as a process and returns its exit code: 0 after
// a clean drain, 1 when the IPL or the drain failed, 2 for bad usage.
//
// With the single argument "healthcheck" it instead probes the /healthz of
// a node running with the same environment (images have no shell or curl).
func Main(role Role) int {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "healthcheck":
			return healthcheck()
		case "-h", "-help", "--help", "help":
			fmt.Printf("usage: %s [healthcheck]\n\nRuns a BEDS %s node configured by beds.toml, env_<BEDS_ENV>.toml and BEDS_* variables.\n", os.Args[0], role.Name)
			return 0
		default:
			fmt.Fprintf(os.Stderr, "%s: unknown argument %q (try --help)\n", os.Args[0], os.Args[1])
			return 2
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	force := make(chan struct{})
	go func() {
		<-signals
		stop()
		<-signals
		close(force)
	}()

	n, err := Boot(ctx, role, nil)
	if err != nil {
		reportBootFailure(role.Name, err)
		return 1
	}
	if err := n.Run(ctx, force); err != nil {
		return 1
	}
	return 0
}

// reportBootFailure prints why the IPL stopped: a readable message in dev,
// one structured line elsewhere.
func reportBootFailure(role string, err error) {
	env := os.Getenv("BEDS_ENV")
	if env == "" || env == config.EnvDev {
		fmt.Fprintf(os.Stderr, "\nBEDS %s did not start.\n\n  %v\n\n", role, err)
		var se *StepError
		if errors.As(err, &se) && (se.Step == "amqp" || se.Step == "stores" || se.Step == "pools") {
			fmt.Fprintf(os.Stderr, "Is the server at %s running? The README says how to start the local servers.\n\n", se.Target)
		}
		return
	}
	line := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "level": "ERROR", "msg": "ipl failed", "role": role, "err": err.Error()}
	var se *StepError
	if errors.As(err, &se) {
		line["step"], line["target"] = se.Step, se.Target
	}
	b, _ := json.Marshal(line)
	fmt.Fprintln(os.Stderr, string(b))
}

func healthcheck() int {
	cfg, err := config.Load("healthcheck")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cfg.HTTP.Addr == "" {
		fmt.Fprintln(os.Stderr, "healthcheck: the ops endpoint is disabled (http.addr is empty)")
		return 1
	}
	// A node listening on every interface is probed on loopback.
	host, port, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck: http.addr:", err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		return 1
	}
	return 0
}

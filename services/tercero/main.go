// Command tercero runs a BEDS tercero node (accounts, sessions and access checks).
//
// It boots through the same IPL as every role (config, templates,
// RabbitMQ topology, stores), serves /healthz, /readyz and /metrics, and
// waits for SIGTERM. Its own brokers arrive with their own issues; until
// then it runs none rather than pretending to serve.
package main

import (
	"os"

	"github.com/beds-project/beds/shared/ipl"
)

func main() {
	os.Exit(ipl.Main(ipl.Role{Name: "tercero"}))
}

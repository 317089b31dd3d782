// Command tercero runs a BEDS tercero node (accounts, sessions and access checks).
//
// It boots through the same IPL as every role (config, RabbitMQ topology;
// no templates or stores yet), serves /healthz, /readyz and /metrics, and
// waits for SIGTERM. Its own brokers arrive with their own issues; until
// then it runs none rather than pretending to serve.
package main

import (
	"os"

	"github.com/beds-project/beds/shared/ipl"
)

func main() {
	os.Exit(ipl.Main(role))
}

// role is the tercero role. Until its brokers arrive it needs RabbitMQ only:
// it serves no templates and opens no store.
var role = ipl.Role{Name: "tercero"}

// Package check holds the deployment checks that CI runs on a machine
// without a Docker engine (its tests are the whole of it):
//
//   - compose_test.go loads docker-compose.yml with compose-go, the loader
//     Docker Compose itself uses, and checks what must hold: healthchecks,
//     healthy dependencies, existing build contexts and mounts, known BEDS_*
//     variables, consistent credentials that .env can override, each role
//     built from the one Dockerfile with its ROLE build argument and given
//     its own accounts (never an operator's), defaults that BEDS_ENV=prod
//     refuses;
//   - accounts_test.go checks the servers' account scripts (least
//     privilege, docs/deployment.md): RabbitMQ permissions against the
//     contract's names and the rabbitmq entrypoint's start-up, MariaDB
//     grants against every template's objects, MongoDB's accounts.js;
//   - dockerfile_test.go builds each role the way the Dockerfile does with
//     --build-arg ROLE=<role> (same substitution, context filter, layout,
//     ENV and go command) and runs the binary with the image's ENV,
//     ENTRYPOINT and HEALTHCHECK against real servers (BEDS_ENV=prod
//     refusing their stock accounts, then qa);
//   - cluster_test.go runs scripts/cluster.sh end to end.
//
// It is a module of its own, outside go.work, so compose-go's dependencies
// never enter the product's modules. Run it with
//
//	cd deploy/check && GOWORK=off go test ./...
package check

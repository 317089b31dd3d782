# BEDS developer commands. `make test` is the README's test command.
SHELL := /bin/bash
MODULES := $(shell go list -m -f '{{.Dir}}/...')
ROLES := appserver admin segundo tercero

.PHONY: test lint build sizes run servers schema fuzz faults soak soak-short

## test: start (installing where needed) the servers the tests use, format and
## vet checks, every module's tests with the race detector, then the fault
## tests alone (they restart the machine's RabbitMQ and MariaDB); between
## them, every fuzz target for a short bounded time and the 3-minute soak
test: servers lint
	go test -race -count=1 -timeout 15m $(MODULES)
	cd deploy/check && GOWORK=off go test -race -count=1 -timeout 10m ./...
	$(MAKE) fuzz
	$(MAKE) soak-short
	$(MAKE) faults

## fuzz: every fuzz target for FUZZTIME (default 15s) beyond its seed corpus
fuzz:
	bash scripts/fuzz.sh

## faults: kill, restart and SIGTERM under load; prints what was lost or
## duplicated, writes each test's figures as JSON to $(BEDS_RESULTS_DIR), then
## rewrites the fault-test table of docs/guarantees.md from them
BEDS_RESULTS_DIR ?= $(CURDIR)/results/faults
faults:
	rm -f "$(BEDS_RESULTS_DIR)"/*.json
	BEDS_RESULTS_DIR="$(BEDS_RESULTS_DIR)" go test -tags faults -count=1 -p 1 -timeout 25m -run '^TestFault' -v ./services/appserver/
	BEDS_RESULTS_DIR="$(BEDS_RESULTS_DIR)" go test -count=1 -run '^TestGuaranteesTable$$' -v ./services/appserver/ -faulttable

## soak: a local cluster under a steady mixed load for SOAK_DURATION (default
## 35m), every node's RSS, heap, goroutines, descriptors and connections
## sampled; a verdict on their growth per hour and a plot in SOAK_OUT (default
## results/soak). Not part of test; docs/soak.md explains it
SOAK_DURATION ?= 35m
SOAK_OUT ?= $(CURDIR)/results/soak
soak:
	bash scripts/soak.sh $(SOAK_DURATION) --out "$(SOAK_OUT)"

## soak-short: the same for 3 minutes, with names and ports of its own and
## bounds that only a gross leak passes (a goroutine, descriptor or
## connection per few hundred requests)
soak-short:
	BEDS_SOAK_DB=beds_soak_short BEDS_SOAK_DIR=/tmp/beds-soak-short BEDS_SOAK_PORT=18290 \
		bash scripts/soak.sh 3m --out "$(CURDIR)/results/soak-short" --interval 3s \
		--max-rss-mib-per-h 2000 --max-heap-mib-per-h 1000 --max-goroutines-per-h 2000 \
		--max-fds-per-h 1000 --max-conns-per-h 1000

## lint: gofmt, go mod tidy (each module), go vet over the workspace, and the
## template lint of templates/ (bedsctl templates)
lint:
	@out=$$(gofmt -l shared services deploy tools); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES:/...=) deploy/check; do (cd $$m && GOWORK=off go mod tidy -diff >/dev/null) || { echo "go mod tidy needed in $$m"; exit 1; }; done
	go vet $(MODULES)
	cd deploy/check && GOWORK=off go vet ./...
	@go run ./shared/cmd/bedsctl templates --dir templates >/dev/null

## build: the four role binaries and bedsctl into bin/
build:
	@mkdir -p bin
	for r in $(ROLES); do CGO_ENABLED=0 go build -trimpath -o bin/$$r ./services/$$r || exit 1; done
	CGO_ENABLED=0 go build -trimpath -o bin/bedsctl ./shared/cmd/bedsctl

## sizes: each role's binary as the Dockerfile builds it (GOWORK=off, static,
## stripped), in bytes
sizes:
	@for r in $(ROLES); do (cd services/$$r && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /tmp/beds-size-$$r .) || exit 1; \
		printf '%-10s %s\n' $$r $$(stat -c %s /tmp/beds-size-$$r); rm -f /tmp/beds-size-$$r; done

## servers: install (from Debian's packages) and start what is missing: RabbitMQ,
## MariaDB, the FerretDB stand-in for MongoDB, and the MariaDB primary and
## replica of the replica tests (scripts/mariadb-replicas.sh)
servers:
	bash scripts/servers.sh

## schema: create the local database "beds", apply the DBA objects (MariaDB's
## with the mariadb client, MongoDB's with bedsctl schema apply, which needs
## no mongosh), and check them against the templates (bedsctl schema check;
## the objects themselves come from bedsctl schema gen, see docs/templates.md)
schema:
	mariadb -uroot -h127.0.0.1 -e 'CREATE DATABASE IF NOT EXISTS beds CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
	for f in deploy/mariadb/*.sql; do mariadb -uroot -h127.0.0.1 beds < $$f || exit 1; done
	go run ./shared/cmd/bedsctl schema apply --config-dir deploy/config --dir templates
	go run ./shared/cmd/bedsctl schema check --config-dir deploy/config --dir templates

## run: one appserver against the local servers
run:
	go run ./services/appserver

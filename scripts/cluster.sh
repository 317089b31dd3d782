#!/usr/bin/env bash
# A whole BEDS cluster as local processes, without Docker: the four roles,
# two appservers, against the local RabbitMQ, MariaDB and MongoDB-wire
# servers (`make servers` starts those).
#
# Usage: scripts/cluster.sh up|down|status
#
#   up      build the four roles into the state folder, make sure the MariaDB
#           schema exists (see below), start the nodes in the background and
#           wait (bounded) until every /readyz answers 200; print each node's
#           pid, ops address and log. If a node fails to start, print its log,
#           stop the others and exit 1. If the cluster is already up, say so.
#   down    SIGTERM every node, wait for each to drain and exit (SIGKILL
#           after BEDS_CLUSTER_STOP_TIMEOUT); exit 1 if one had to be killed.
#   status  each node's pid, address and readiness; exit 0 only if every node
#           runs and is ready.
#
# Nodes: appserver-1 .. appserver-N, admin-1, segundo-1, tercero-1, each with
# its own BEDS_NODE_NAME and BEDS_HTTP_ADDR (127.0.0.1, consecutive ports
# from BEDS_CLUSTER_PORT).
#
# Environment:
#   BEDS_AMQP_URL, BEDS_MARIADB_DSN, BEDS_MONGO_URI
#                             passed to every node; unset means the local
#                             defaults of deploy/config/beds.toml
#   BEDS_CONFIG_DIR, BEDS_TEMPLATE_DIR, BEDS_ENV, BEDS_LOG_LEVEL
#                             passed through; default deploy/config, templates
#   BEDS_CLUSTER_DIR          state folder: binaries, pid files, logs
#                             (default /tmp/beds-cluster)
#   BEDS_CLUSTER_PORT         first ops port (default 18080)
#   BEDS_CLUSTER_APPSERVERS   appserver nodes (default 2)
#   BEDS_CLUSTER_TIMEOUT      seconds `up` waits for readiness (default 60)
#   BEDS_CLUSTER_STOP_TIMEOUT seconds `down` waits for a drain (default 40)
#
# Schema: without BEDS_MARIADB_DSN the nodes use root@127.0.0.1:3306/beds;
# `up` then creates the database "beds" if it is missing and applies
# deploy/mariadb/*.sql if a table they create is missing (the mariadb client
# as root, no password: the local defaults). Without BEDS_MONGO_URI they use
# mongodb://127.0.0.1:27017/beds, and `up` applies deploy/mongo's template
# scripts to it (bedsctl schema apply, which changes nothing where they are
# applied). With BEDS_MARIADB_DSN or BEDS_MONGO_URI set, the schema of that
# database is the caller's business (`make schema`, or shared/testenv in
# tests).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${BEDS_CLUSTER_DIR:-/tmp/beds-cluster}
base_port=${BEDS_CLUSTER_PORT:-18080}
appservers=${BEDS_CLUSTER_APPSERVERS:-2}
start_timeout=${BEDS_CLUSTER_TIMEOUT:-60}
stop_timeout=${BEDS_CLUSTER_STOP_TIMEOUT:-40}
roles=(appserver admin segundo tercero)

say() { echo "cluster.sh: $*"; }
die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

[[ $base_port =~ ^[0-9]+$ ]] || die "BEDS_CLUSTER_PORT=$base_port is not a port"
[[ $appservers =~ ^[1-9][0-9]*$ ]] || die "BEDS_CLUSTER_APPSERVERS=$appservers: at least 1"

# plan: "name role port" per line, in start order, from the environment.
plan() {
	local i port=$base_port
	for ((i = 1; i <= appservers; i++)); do
		echo "appserver-$i appserver $port"
		port=$((port + 1))
	done
	local r
	for r in "${roles[@]:1}"; do
		echo "$r-1 $r $port"
		port=$((port + 1))
	done
}

# nodes: the nodes of the cluster `up` last started from this state folder
# (so `down` stops what runs, whatever the environment says now), else plan.
nodes() {
	if [[ -s $state/nodes ]]; then
		cat "$state/nodes"
	else
		plan
	fi
}

# running PID: the process is alive, not a zombie, and runs one of our
# binaries (not a recycled pid).
running() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	[[ $exe == "$state/bin/"* ]] || return 1
	[[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# node_pid NAME: prints the pid from NAME's pid file if that process is
# running; fails otherwise.
node_pid() {
	local f=$state/$1.pid pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	running "$pid" || return 1
	echo "$pid"
}

port_open() { # host:port
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${1%:*}" "${1##*:}" 2>/dev/null
}

# http_status ADDR PATH: prints the HTTP status code of GET http://ADDR/PATH,
# or 000 when nothing answers. Pure bash (no curl in minimal setups).
http_status() {
	local host=${1%:*} port=${1##*:}
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$0:$1" >&3
		read -r _ code _ <&3 && echo "$code"
	' "$host" "$port" "$2" 2>/dev/null || echo 000
}

build() {
	command -v go >/dev/null || die "go is not on PATH"
	mkdir -p "$state/bin"
	local r t0=$SECONDS
	for r in "${roles[@]}"; do
		# As the images build it: the role's module alone, go.work ignored.
		(cd "$root/services/$r" && GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$state/bin/$r.tmp" .) ||
			die "go build of services/$r failed"
		mv -f "$state/bin/$r.tmp" "$state/bin/$r"
	done
	say "built ${roles[*]} into $state/bin in $((SECONDS - t0))s"
}

# schema: the local default databases, where the caller did not name one.
schema() {
	if [[ -z ${BEDS_MONGO_URI:-} ]]; then
		(cd "$root" && go run ./shared/cmd/bedsctl schema apply --config-dir "${BEDS_CONFIG_DIR:-$root/deploy/config}" \
			--dir "${BEDS_TEMPLATE_DIR:-$root/templates}" --deploy "$root/deploy") >/dev/null ||
			die "applying deploy/mongo to mongodb://127.0.0.1:27017/beds failed (make servers), or set BEDS_MONGO_URI"
	fi
	[[ -z ${BEDS_MARIADB_DSN:-} ]] || return 0
	command -v mariadb >/dev/null || die "the mariadb client is needed to prepare the local database (or set BEDS_MARIADB_DSN)"
	local sql=(mariadb -uroot -h127.0.0.1 -P3306)
	"${sql[@]}" -e 'CREATE DATABASE IF NOT EXISTS beds CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' ||
		die "cannot reach MariaDB as root on 127.0.0.1:3306 (make servers), or set BEDS_MARIADB_DSN"
	local want have missing=()
	want=$(sed -nE 's/^[[:space:]]*CREATE[[:space:]]+TABLE[[:space:]]+(IF[[:space:]]+NOT[[:space:]]+EXISTS[[:space:]]+)?`?([A-Za-z0-9_]+)`?.*/\2/Ip' "$root"/deploy/mariadb/*.sql | sort -u)
	have=$("${sql[@]}" -N -e "SELECT table_name FROM information_schema.tables WHERE table_schema = 'beds'")
	local t
	for t in $want; do
		grep -qxF "$t" <<<"$have" || missing+=("$t")
	done
	((${#missing[@]} == 0)) && return 0
	say "database beds lacks ${missing[*]}: applying deploy/mariadb/*.sql"
	local f
	for f in "$root"/deploy/mariadb/*.sql; do
		"${sql[@]}" beds <"$f" || die "applying $f failed"
	done
}

start_node() { # name role port
	local name=$1 role=$2 addr=127.0.0.1:$3 log=$state/$1.log
	[[ -f $log ]] && mv -f "$log" "$log.old"
	(
		cd "$root"
		# Keep no inherited descriptor open (a caller's pipes, our lock): the
		# node outlives this script.
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			((fd > 2)) && eval "exec $fd>&-"
		done
		export BEDS_CONFIG_DIR=${BEDS_CONFIG_DIR:-$root/deploy/config}
		export BEDS_TEMPLATE_DIR=${BEDS_TEMPLATE_DIR:-$root/templates}
		export BEDS_NODE_NAME=$name BEDS_HTTP_ADDR=$addr
		exec nohup "$state/bin/$role" </dev/null >"$log" 2>&1
	) &
	echo $! >"$state/$name.pid"
}

# stop_all: SIGTERM every running node, wait for all; returns 1 if one needed
# SIGKILL.
stop_all() {
	local name role port pid pids=() names=() rc=0
	while read -r name role port; do
		if pid=$(node_pid "$name"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$name")
		elif [[ -f $state/$name.pid ]]; then
			say "$name was not running"
		fi
	done < <(nodes)
	((${#pids[@]} > 0)) || say "no node running from $state"
	local i deadline=$((SECONDS + stop_timeout))
	for i in "${!pids[@]}"; do
		while running "${pids[$i]}" && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if running "${pids[$i]}"; then
			say "${names[$i]} (pid ${pids[$i]}) did not stop within ${stop_timeout}s of SIGTERM: SIGKILL"
			kill -KILL "${pids[$i]}" 2>/dev/null || true
			rc=1
		else
			say "${names[$i]} (pid ${pids[$i]}) stopped"
		fi
	done
	while read -r name role port; do rm -f "$state/$name.pid"; done < <(nodes)
	return $rc
}

print_nodes() {
	local name role port pid code all=0
	printf '%-12s %-8s %-22s %-6s %s\n' NODE PID ADDR READY LOG
	while read -r name role port; do
		if pid=$(node_pid "$name"); then
			code=$(http_status "127.0.0.1:$port" /readyz)
		else
			pid=- code=down all=1
		fi
		[[ $code == 200 ]] || all=1
		printf '%-12s %-8s %-22s %-6s %s\n' "$name" "$pid" "127.0.0.1:$port" "$code" "$state/$name.log"
	done < <(nodes)
	return $all
}

up() {
	local name role port running=0 total=0
	while read -r name role port; do
		total=$((total + 1))
		node_pid "$name" >/dev/null && running=$((running + 1))
	done < <(nodes)
	if ((running == total)); then
		say "already up"
		print_nodes
		return
	fi
	((running == 0)) || die "$running of $total nodes run from $state: run 'down' first"

	plan >"$state/nodes"
	while read -r name role port; do
		! port_open "127.0.0.1:$port" || die "127.0.0.1:$port (for $name) is taken; set BEDS_CLUSTER_PORT"
	done < <(nodes)
	build
	schema
	while read -r name role port; do
		start_node "$name" "$role" "$port"
	done < <(nodes)

	local deadline=$((SECONDS + start_timeout)) pending pid
	while :; do
		pending=()
		while read -r name role port; do
			# Alive is enough here: a node may not have exec'd its binary yet.
			pid=$(<"$state/$name.pid")
			if ! kill -0 "$pid" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
				echo "cluster.sh: $name exited during start; its log ($state/$name.log):" >&2
				tail -n 30 "$state/$name.log" >&2 || true
				stop_all >&2 || true
				exit 1
			fi
			[[ $(http_status "127.0.0.1:$port" /readyz) == 200 ]] || pending+=("$name")
		done < <(nodes)
		((${#pending[@]} == 0)) && break
		if ((SECONDS >= deadline)); then
			echo "cluster.sh: not ready within ${start_timeout}s: ${pending[*]}" >&2
			for name in "${pending[@]}"; do
				echo "--- $state/$name.log" >&2
				tail -n 30 "$state/$name.log" >&2 || true
			done
			stop_all >&2 || true
			exit 1
		fi
		sleep 0.2
	done
	say "up: every node is ready"
	print_nodes
}

[[ $# -eq 1 ]] || die "usage: $0 up|down|status"
mkdir -p "$state"
# One cluster.sh at a time per state folder.
if command -v flock >/dev/null; then
	exec 9>"$state/lock"
	flock -w 120 9 || die "could not lock $state/lock"
fi

case $1 in
up) up ;;
down) stop_all ;;
status) print_nodes ;;
*) die "usage: $0 up|down|status" ;;
esac

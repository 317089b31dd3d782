#!/usr/bin/env bash
# Builds, starts, checks and stops a local FerretDB (SQLite backend), the
# MongoDB-wire stand-in server for tests on machines with no MongoDB and no
# Docker. See main.go in this folder for why it exists.
#
# Usage: deploy/ferretdb/run.sh start|stop|status|build
#
#   start   build the binary if it is missing or its sources changed, start
#           it in the background and wait (bounded) until it answers a MongoDB
#           ping. Does nothing if it is already running and healthy. If
#           something else (a real MongoDB, say) already answers a MongoDB ping
#           on the port, says so and exits 0 without starting another.
#   stop    stop the instance named by the pid file (SIGTERM, then SIGKILL).
#   status  exit 0 if the instance started here is running and answers a
#           ping, 1 otherwise.
#   build   only (re)build the binary if needed.
#
# Environment:
#   FERRETDB_PORT               TCP port on 127.0.0.1 (default 27017)
#   BEDS_FERRETDB_STATE         state folder: binary, pid file, log, SQLite data
#                               (default /tmp/beds-ferretdb)
#   FERRETDB_LOG_LEVEL          debug|info|warn|error (default warn)
#   FERRETDB_START_TIMEOUT      seconds to wait for readiness (default 60)
#
# The connection string is mongodb://127.0.0.1:$FERRETDB_PORT/ and the log is
# $BEDS_FERRETDB_STATE/ferretdb.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
host=127.0.0.1
port=${FERRETDB_PORT:-27017}
state=${BEDS_FERRETDB_STATE:-/tmp/beds-ferretdb}
level=${FERRETDB_LOG_LEVEL:-warn}
start_timeout=${FERRETDB_START_TIMEOUT:-60}

bin=$state/ferretdb
pidfile=$state/ferretdb.pid
logfile=$state/ferretdb.log
datadir=$state/data
uri="mongodb://$host:$port/"

say() { echo "ferretdb/run.sh: $*"; }
die() {
	echo "ferretdb/run.sh: $*" >&2
	exit 1
}

# port_open: something accepts TCP connections on host:port.
port_open() {
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# mongo_ping: the server on host:port answers an OP_MSG {ping: 1, $db: "admin"}
# with ok: 1. Pure bash: /dev/tcp, printf, head and od.
mongo_ping() {
	timeout 5 bash -c '
		set -e
		exec 3<>"/dev/tcp/$0/$1"
		# 51-byte OP_MSG (opCode 2013): header, flagBits 0, section kind 0,
		# BSON {ping: int32 1, $db: "admin"} (30 bytes).
		printf "\x33\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00" >&3
		printf "\x00\x00\x00\x00\x00" >&3
		printf "\x1e\x00\x00\x00\x10ping\x00\x01\x00\x00\x00\x02\$db\x00\x06\x00\x00\x00admin\x00\x00" >&3
		read -r b0 b1 b2 b3 < <(head -c 4 <&3 | od -An -tu1)
		len=$((b0 + (b1 << 8) + (b2 << 16) + (b3 << 24)))
		((len > 16 && len < 65536))
		body=$(head -c $((len - 4)) <&3 | od -An -tx1 | tr -d " \n")
		# ok: 1 as a double, an int32 or an int64.
		[[ $body == *016f6b00000000000000f03f* ||
			$body == *106f6b0001000000* ||
			$body == *126f6b000100000000000000* ]]
	' "$host" "$port" 2>/dev/null
}

# our_pid: prints the pid from the pid file if that process is alive and is
# our binary; fails otherwise.
our_pid() {
	[[ -f $pidfile ]] || return 1
	local pid
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	local cmd
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmd == "$bin "* ]] || return 1
	echo "$pid"
}

# sources_sum: a checksum of the sources the binary is built from. A fresh
# clone (CI) gives every file a new mtime, so contents, not times, decide.
sources_sum() {
	(cd "$here" && cat main.go go.mod go.sum) | sha256sum | cut -d' ' -f1
}

needs_build() {
	[[ -x $bin && -f $bin.sum ]] || return 0
	[[ $(<"$bin.sum") == "$(sources_sum)" ]] && return 1
	return 0
}

build() {
	needs_build || return 0
	command -v go >/dev/null || die "go is not on PATH"
	say "building $bin"
	local t0=$SECONDS sum
	sum=$(sources_sum)
	(
		cd "$here"
		GOWORK=off CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$bin.tmp" .
	) || die "build failed"
	mv -f "$bin.tmp" "$bin"
	echo "$sum" >"$bin.sum"
	say "built in $((SECONDS - t0))s"
}

stop() {
	local pid
	if ! pid=$(our_pid); then
		rm -f "$pidfile"
		say "not running"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 150; i++)); do # 15 s, then SIGKILL
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "pid $pid did not stop on SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$pidfile"
	say "stopped (pid $pid)"
}

start() {
	local pid
	if pid=$(our_pid); then
		# Started here, maybe by a concurrent start that is still waiting.
		local deadline=$((SECONDS + start_timeout))
		while ((SECONDS < deadline)); do
			if mongo_ping; then
				say "already running (pid $pid) on $uri"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		say "pid $pid does not answer on $uri; restarting it"
		stop
	fi
	rm -f "$pidfile"

	if port_open; then
		if mongo_ping; then
			say "something else already serves MongoDB on $host:$port (not started by run.sh); using it, not starting another"
			return 0
		fi
		die "$host:$port is taken by something that does not answer a MongoDB ping; set FERRETDB_PORT"
	fi

	build
	mkdir -p "$datadir"
	[[ -f $logfile ]] && mv -f "$logfile" "$logfile.old"

	(
		# Keep no inherited descriptor open (our lock, a CI runner's pipes):
		# the server outlives this script.
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			((fd > 2)) && eval "exec $fd>&-"
		done
		exec nohup "$bin" -listen "$host:$port" -dir "$datadir" -log-level "$level" \
			</dev/null >"$logfile" 2>&1
	) &
	pid=$!
	echo "$pid" >"$pidfile"

	local deadline=$((SECONDS + start_timeout))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$pidfile"
			tail -n 20 "$logfile" >&2 || true
			die "ferretdb exited during start; log: $logfile"
		fi
		if grep -q "listening on $uri" "$logfile" && port_open && mongo_ping; then
			say "running (pid $pid) on $uri, data in $datadir, log $logfile"
			return 0
		fi
		sleep 0.2
	done
	tail -n 20 "$logfile" >&2 || true
	stop >&2
	die "ferretdb did not answer on $uri within ${start_timeout}s; log: $logfile"
}

status() {
	local pid
	if pid=$(our_pid) && mongo_ping; then
		say "running (pid $pid) on $uri"
		return 0
	fi
	if [[ -n ${pid:-} ]]; then
		say "pid $pid is alive but does not answer on $uri"
	elif mongo_ping; then
		say "not running from $state, but something else serves MongoDB on $host:$port"
	else
		say "not running"
	fi
	return 1
}

[[ $# -eq 1 ]] || die "usage: $0 start|stop|status|build"

mkdir -p "$state"
# One run.sh at a time per state folder, so concurrent starts do not race.
if command -v flock >/dev/null; then
	exec 9>"$state/lock"
	flock -w 300 9 || die "could not lock $state/lock"
fi

case $1 in
start) start ;;
stop) stop ;;
status) status ;;
build) build ;;
*) die "usage: $0 start|stop|status|build" ;;
esac

#!/usr/bin/env bash
# A RabbitMQ cluster of three nodes on this machine, beside (never with) the
# machine's own node: each node has its own name, AMQP and distribution
# ports, data and log folders and config file, and the three are joined into
# one cluster. BEDS runs against it with amqp.addresses and queue_type
# "quorum" (docs/cluster.md); the cluster fault test starts it with this.
#
# Usage: scripts/rabbitmq-cluster.sh start|stop|status|addresses|nodes|stop-node N|kill-node N|start-node N
#
#   start         start the nodes that are not running (all at once: a node
#                 that stopped before another waits for it at boot), join
#                 any that is not clustered to the first, wait (bounded)
#                 until every node runs and the cluster holds them all, make
#                 the virtual host BEDS_RMQ_VHOST with full permissions for
#                 guest, print the addresses. Idempotent: on a running
#                 cluster it only checks and prints.
#   stop          stop every node (rabbitmqctl stop); data and logs stay, so
#                 the next start finds the cluster as it was.
#   status        each node: running or not, its AMQP address, what the
#                 cluster looks like from it; exit 0 only if all run and
#                 are clustered.
#   addresses     print BEDS_AMQP_URL and BEDS_AMQP_ADDRESSES lines for the
#                 cluster (to eval, or paste in a config).
#   nodes         print one line per node: its number, name and AMQP port.
#   stop-node N   stop node N (1-based) alone, for a fault test.
#   kill-node N   SIGKILL node N's Erlang VM (a crash: no connection is
#                 closed, no leader handed over), for a fault test.
#   start-node N  start node N again and wait until it is back in the
#                 cluster.
#
# Environment (defaults in brackets):
#   BEDS_RMQ_NODES    nodes [3]
#   BEDS_RMQ_PREFIX   node names are PREFIX1@HOST.. [beds]
#   BEDS_RMQ_HOST     host part of the node names [localhost]
#   BEDS_RMQ_PORT     AMQP port of node 1; node N listens on PORT+N-1 and
#                     on PORT+N-1+20000 for Erlang distribution [5681]
#   BEDS_RMQ_DIR      state folder: one folder per node with its config,
#                     data (mnesia) and logs [/tmp/beds-rabbitmq]
#   BEDS_RMQ_VHOST    virtual host made for BEDS [beds]
#   BEDS_RMQ_TIMEOUT  seconds start waits for the cluster [120]
#
# The machine's own node (rabbit@localhost, AMQP 5672, its config in
# /etc/rabbitmq) is never touched: a node name or port that would be its
# is refused, and every rabbitmqctl call names its node with -n.
#
# The nodes run as the rabbitmq user (this script, run as root, switches to
# it), so they share its Erlang cookie with each other and with the CLI
# tools. Everything listens on 127.0.0.1 only: the guest user, which
# RabbitMQ admits from loopback only (loopback_users), can connect.
set -euo pipefail

nodes=${BEDS_RMQ_NODES:-3}
prefix=${BEDS_RMQ_PREFIX:-beds}
host=${BEDS_RMQ_HOST:-localhost}
base_port=${BEDS_RMQ_PORT:-5681}
state=${BEDS_RMQ_DIR:-/tmp/beds-rabbitmq}
vhost=${BEDS_RMQ_VHOST:-beds}
timeout=${BEDS_RMQ_TIMEOUT:-120}
rmq_bin=/usr/lib/rabbitmq/bin

say() { echo "rabbitmq-cluster.sh: $*"; }
die() {
	echo "rabbitmq-cluster.sh: $*" >&2
	exit 1
}

[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "BEDS_RMQ_NODES=$nodes: a number of nodes, at least 1"
[[ $base_port =~ ^[0-9]+$ ]] && ((base_port > 0 && base_port + nodes - 1 + 20000 <= 65535)) ||
	die "BEDS_RMQ_PORT=$base_port: a port such that PORT+$nodes+20000 is one too"
[[ $prefix =~ ^[A-Za-z][A-Za-z0-9_-]*$ ]] || die "BEDS_RMQ_PREFIX=$prefix: letters, digits, - and _"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "BEDS_RMQ_TIMEOUT=$timeout: seconds"
[[ -x $rmq_bin/rabbitmq-server ]] || die "RabbitMQ is not installed in $rmq_bin (make servers installs it)"

name() { echo "$prefix$1@$host"; }
port() { echo $((base_port + $1 - 1)); }
dist_port() { echo $((base_port + $1 - 1 + 20000)); }
dir() { echo "$state/$prefix$1"; }

for ((i = 1; i <= nodes; i++)); do
	[[ $(name "$i") != rabbit@* ]] || die "node $(name "$i") would be the machine's own node (rabbit@...): set BEDS_RMQ_PREFIX"
	for p in "$(port "$i")" "$(dist_port "$i")"; do
		((p != 5672 && p != 25672)) || die "port $p is the machine's own node's: set BEDS_RMQ_PORT"
	done
done

# as_rabbitmq CMD...: runs CMD as the rabbitmq user, whose home holds the
# Erlang cookie every node and CLI tool must share.
as_rabbitmq() {
	if [[ $(id -un) == rabbitmq ]]; then
		env HOME=/var/lib/rabbitmq "$@"
	elif ((EUID == 0)); then
		runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq "$@"
	else
		die "run as root or as the rabbitmq user (the nodes run as rabbitmq and share its Erlang cookie)"
	fi
}

# ctl N ARGS...: rabbitmqctl against node N, never the machine's node.
ctl() {
	local n=$1
	shift
	as_rabbitmq "$rmq_bin/rabbitmqctl" -n "$(name "$n")" "$@"
}

port_open() { # port
	timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# running N: node N's Erlang node answers and its RabbitMQ application runs.
running() {
	ctl "$1" -q -t 10 eval 'rabbit:is_running().' 2>/dev/null | grep -qx true
}

# beam_running N: node N's Erlang VM is alive (its distribution port is
# registered with epmd), whether or not RabbitMQ runs in it.
beam_running() {
	epmd -names 2>/dev/null | grep -q "^name $prefix$1 at port "
}

# members N: the running nodes of the cluster as node N sees them, one a
# line, sorted.
members() {
	ctl "$1" -q -t 10 eval 'lists:foreach(fun(N) -> io:format("~s~n", [N]) end, lists:sort(rabbit_nodes:all_running())).' 2>/dev/null |
		grep '@' || true
}

# disk_members N: every node of the cluster as node N's database records
# it (running or not).
disk_members() {
	ctl "$1" -q -t 10 eval 'lists:foreach(fun(N) -> io:format("~s~n", [N]) end, lists:sort(rabbit_nodes:all())).' 2>/dev/null |
		grep '@' || true
}

want_members() {
	local i
	for ((i = 1; i <= nodes; i++)); do name "$i"; done | sort
}

prepare() { # N: the node's folders and files
	local n=$1 d
	d=$(dir "$n")
	mkdir -p "$d/mnesia" "$d/log"
	cat >"$d/rabbitmq.conf" <<-EOF
		# Node $(name "$n") of scripts/rabbitmq-cluster.sh; written at every start.
		listeners.tcp.1 = 127.0.0.1:$(port "$n")
		# guest may connect from loopback only: every address here is one.
		loopback_users.guest = true
		# Three nodes: the side with fewer pauses rather than split the cluster.
		cluster_partition_handling = pause_minority
		log.file.level = info
		log.console = false
	EOF
	echo '[].' >"$d/enabled_plugins"
	# Read instead of /etc/rabbitmq/rabbitmq-env.conf, which names the
	# machine's own node.
	cat >"$d/rabbitmq-env.conf" <<-EOF
		NODENAME=$(name "$n")
		NODE_IP_ADDRESS=127.0.0.1
		NODE_PORT=$(port "$n")
		DIST_PORT=$(dist_port "$n")
		ERL_EPMD_ADDRESS=127.0.0.1
	EOF
	if ((EUID == 0)); then
		chown -R rabbitmq: "$state"
	fi
}

launch() { # N: start node N's VM in the background
	local n=$1 d
	d=$(dir "$n")
	prepare "$n"
	if beam_running "$n"; then
		# The VM runs but RabbitMQ does not (stop_app, or paused as the
		# minority): start the application.
		say "$(name "$n"): VM up, starting the application"
		ctl "$n" -q start_app >/dev/null 2>&1 9>&- &
		return
	fi
	! port_open "$(port "$n")" || die "127.0.0.1:$(port "$n") is taken by something that is not $(name "$n"): set BEDS_RMQ_PORT"
	say "$(name "$n"): starting on 127.0.0.1:$(port "$n") (data in $d)"
	# setsid: the node outlives this script and its caller's terminal.
	as_rabbitmq setsid env \
		RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
		RABBITMQ_NODENAME="$(name "$n")" \
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		RABBITMQ_NODE_PORT="$(port "$n")" \
		RABBITMQ_DIST_PORT="$(dist_port "$n")" \
		RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
		RABBITMQ_MNESIA_BASE="$d/mnesia" \
		RABBITMQ_LOG_BASE="$d/log" \
		RABBITMQ_PID_FILE="$d/pid" \
		ERL_EPMD_ADDRESS=127.0.0.1 \
		"$rmq_bin/rabbitmq-server" </dev/null >"$d/log/stdout.log" 2>&1 9>&- &
}

# wait_running N...: until each node's application runs, or the deadline.
wait_running() {
	local deadline=$((SECONDS + timeout)) n pending
	while :; do
		pending=()
		for n in "$@"; do
			running "$n" || pending+=("$n")
		done
		((${#pending[@]} == 0)) && return 0
		if ((SECONDS >= deadline)); then
			for n in "${pending[@]}"; do
				echo "rabbitmq-cluster.sh: $(name "$n") not running within ${timeout}s; its log ($(dir "$n")/log):" >&2
				tail -n 20 "$(dir "$n")/log/$(name "$n").log" >&2 2>/dev/null || tail -n 20 "$(dir "$n")/log/stdout.log" >&2 || true
			done
			return 1
		fi
		sleep 1
	done
}

# join N: make node N a member of node 1's cluster. Only for a node whose
# database does not know the cluster: reset empties it.
join() {
	local n=$1
	local out
	out=$(dir "$n")/log/join.log
	say "$(name "$n"): joining $(name 1)'s cluster"
	# The CLI prints the node's own log lines while it joins (feature
	# flags, tracking tables): kept in join.log, shown if the join fails.
	{ ctl "$n" -q stop_app && ctl "$n" -q reset && ctl "$n" -q join_cluster "$(name 1)" && ctl "$n" -q start_app; } >"$out" 2>&1 || {
		cat "$out" >&2
		die "$(name "$n") could not join $(name 1)"
	}
}

# wait_clustered: until node 1 sees every node running, or the deadline.
wait_clustered() {
	local deadline=$((SECONDS + timeout)) want
	want=$(want_members)
	while [[ $(members 1) != "$want" ]]; do
		if ((SECONDS >= deadline)); then
			echo "rabbitmq-cluster.sh: the cluster does not hold every node within ${timeout}s; $(name 1) sees running:" >&2
			members 1 >&2
			return 1
		fi
		sleep 1
	done
}

addresses() {
	local i list=()
	for ((i = 2; i <= nodes; i++)); do list+=("127.0.0.1:$(port "$i")"); done
	echo "BEDS_AMQP_URL=amqp://guest:guest@127.0.0.1:$(port 1)/$vhost"
	echo "BEDS_AMQP_ADDRESSES=$(
		IFS=,
		echo "${list[*]}"
	)"
}

start() {
	local i down=()
	for ((i = 1; i <= nodes; i++)); do
		running "$i" || down+=("$i")
	done
	for i in "${down[@]}"; do launch "$i"; done
	if ((${#down[@]} > 0)); then
		wait_running "${down[@]}" || die "start failed; 'stop' stops what runs"
	fi
	# A node whose database does not list node 1 (a new node) joins it.
	for ((i = 2; i <= nodes; i++)); do
		disk_members "$i" | grep -qxF "$(name 1)" || join "$i"
	done
	wait_clustered || die "start failed; 'stop' stops what runs"
	if ! ctl 1 -q list_vhosts name | grep -qxF "$vhost"; then
		ctl 1 -q add_vhost "$vhost" >/dev/null
	fi
	ctl 1 -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
	say "up: $(members 1 | paste -sd' ') clustered; virtual host $vhost"
	addresses
}

stop_node() { # N
	local n=$1
	if ! beam_running "$n"; then
		say "$(name "$n") was not running"
		return 0
	fi
	ctl "$n" -q stop >/dev/null || die "rabbitmqctl -n $(name "$n") stop failed"
	say "$(name "$n") stopped"
}

kill_node() { # N
	local n=$1 pid
	pid=$(cat "$(dir "$n")/pid" 2>/dev/null) || pid=
	# Only the VM this script started for node N: a recycled pid is not it.
	if [[ ! $pid =~ ^[0-9]+$ ]] || [[ $(readlink "/proc/$pid/exe" 2>/dev/null) != */beam.smp ]] ||
		! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RABBITMQ_NODENAME=$(name "$n")"; then
		say "$(name "$n") was not running"
		return 0
	fi
	kill -KILL "$pid"
	while [[ -e /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do sleep 0.05; done
	say "$(name "$n") killed (pid $pid)"
}

stop() {
	local i
	# The last first: node 1, which start joins the others to, stops last
	# and so holds the newest view of the cluster.
	for ((i = nodes; i >= 1; i--)); do stop_node "$i"; done
}

status() {
	local i all=0 want
	want=$(want_members)
	printf '%-20s %-8s %-16s %s\n' NODE STATE AMQP "RUNNING MEMBERS (as the node sees them)"
	for ((i = 1; i <= nodes; i++)); do
		local st=down seen=-
		if running "$i"; then
			st=running
			seen=$(members "$i" | paste -sd' ')
			[[ $(members "$i") == "$want" ]] || all=1
		else
			beam_running "$i" && st=stopped_app
			all=1
		fi
		printf '%-20s %-8s %-16s %s\n' "$(name "$i")" "$st" "127.0.0.1:$(port "$i")" "$seen"
	done
	return $all
}

node_arg() { # N: check a node number
	[[ ${1:-} =~ ^[1-9][0-9]*$ ]] && (($1 <= nodes)) || die "node number from 1 to $nodes, not '${1:-}'"
}

usage="usage: $0 start|stop|status|addresses|nodes|stop-node N|kill-node N|start-node N"
[[ $# -ge 1 ]] || die "$usage"
mkdir -p "$state"
((EUID != 0)) || chown rabbitmq: "$state"
# One invocation at a time per state folder.
exec 9>>"$state/lock"
flock -w $((timeout + 60)) 9 || die "could not lock $state/lock"

case $1 in
start) start ;;
stop) stop ;;
status) status ;;
addresses) addresses ;;
nodes)
	for ((i = 1; i <= nodes; i++)); do echo "$i $(name "$i") $(port "$i")"; done
	;;
stop-node)
	node_arg "${2:-}"
	stop_node "$2"
	;;
kill-node)
	node_arg "${2:-}"
	kill_node "$2"
	;;
start-node)
	node_arg "${2:-}"
	if running "$2"; then
		say "$(name "$2") is running"
	else
		launch "$2"
		wait_running "$2" || die "start-node failed"
	fi
	wait_clustered || die "$(name "$2") did not rejoin the cluster"
	say "$(name "$2") running and clustered"
	;;
*) die "$usage" ;;
esac

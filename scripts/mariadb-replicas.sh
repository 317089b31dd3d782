#!/usr/bin/env bash
# A MariaDB primary and its replicas on this machine, for the replica tests
# of shared/store/mariadb and for trying BEDS's read routing by hand: extra
# mariadbd processes (user mysql), each with its own datadir, socket, pid
# file, error log and port, bound to 127.0.0.1. The machine's own MariaDB
# (3306) is never touched.
#
# Usage: scripts/mariadb-replicas.sh start|stop|status|env|reset
#        scripts/mariadb-replicas.sh stop-replica|kill-replica|start-replica N
#
#   start            initialise what has no datadir yet (mariadb-install-db),
#                    start every node that does not run, and make every
#                    replica replicate from the primary (GTID, slave_pos).
#                    Running nodes are left alone; a stale pid file is
#                    removed. Waits (bounded) until every node answers and
#                    every replica's threads run, then prints where they are.
#   stop             shut every node down (SHUTDOWN, then SIGKILL after
#                    BEDS_REPLICAS_STOP_TIMEOUT); the datadirs stay.
#   status           each node's pid, port and, for a replica, its
#                    replication threads and lag; exit 0 only if all run
#                    and replicate.
#   env              the test environment variables for these nodes, as
#                    export lines (eval "$(scripts/mariadb-replicas.sh env)").
#   stop-replica N   shut replica N (1..BEDS_REPLICAS_COUNT) down: what a lost
#                    replica looks like to BEDS. kill-replica N kills it
#                    (SIGKILL): a crash. start-replica N starts it again; it
#                    recovers and resumes replicating where it stopped.
#   reset            stop, then delete the state folder (every datadir).
#
# Nodes: the primary on BEDS_REPLICAS_PRIMARY_PORT (server_id 1, binary log,
# ROW format), replica i on BEDS_REPLICAS_PORT + i - 1 (server_id 1 + i,
# read_only). Each node's root account is root@localhost (unix socket, as
# the OS root) and root@127.0.0.1 without a password, for tests; replicas
# log in to the primary as the user repl (REPLICATION SLAVE).
#
# Environment:
#   BEDS_REPLICAS_DIR           state folder (default /var/lib/beds-replicas):
#                               <node>/data, <node>/mysqld.sock, .pid, .err
#   BEDS_REPLICAS_PRIMARY_PORT  primary's port (default 3310)
#   BEDS_REPLICAS_PORT          first replica's port (default 3311)
#   BEDS_REPLICAS_COUNT         replicas (default 1)
#   BEDS_REPLICAS_TIMEOUT       seconds start waits for a node (default 60)
#   BEDS_REPLICAS_STOP_TIMEOUT  seconds stop waits for a shutdown (default 30)
#
# Must run as root (mariadbd drops to the user mysql).
set -euo pipefail

state=${BEDS_REPLICAS_DIR:-/var/lib/beds-replicas}
primary_port=${BEDS_REPLICAS_PRIMARY_PORT:-3310}
replica_port=${BEDS_REPLICAS_PORT:-3311}
count=${BEDS_REPLICAS_COUNT:-1}
start_timeout=${BEDS_REPLICAS_TIMEOUT:-60}
stop_timeout=${BEDS_REPLICAS_STOP_TIMEOUT:-30}
repl_user=repl
repl_pass=beds-repl # a test machine's replication account, bound to 127.0.0.1

say() { echo "mariadb-replicas: $*"; }
die() {
	echo "mariadb-replicas: $*" >&2
	exit 1
}

for v in primary_port replica_port count start_timeout stop_timeout; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not a number"
done
((count >= 1)) || die "BEDS_REPLICAS_COUNT=$count: at least 1"
for ((i = 0; i < count; i++)); do
	p=$((replica_port + i))
	((p != 3306 && primary_port != 3306)) || die "port 3306 is the machine's own MariaDB; choose other ports"
	((p != primary_port)) || die "replica port $p is the primary's"
done

# nodes: "name port server_id" per line, the primary first.
nodes() {
	echo "primary $primary_port 1"
	local i
	for ((i = 1; i <= count; i++)); do
		echo "replica$i $((replica_port + i - 1)) $((i + 1))"
	done
}

dir() { echo "$state/$1"; }
sock() { echo "$state/$1/mysqld.sock"; }
pidfile() { echo "$state/$1/mysqld.pid"; }

# sql NODE STATEMENTS: run as root over the node's socket, tab-separated
# output without headers.
sql() {
	mariadb --no-defaults -uroot --socket="$(sock "$1")" -N -B -e "$2"
}

# pid NODE: the node's pid if its process runs, else nothing; a stale pid
# file is removed. The process must be a mariadbd on this node's datadir,
# so a pid reused by another process (the machine's own MariaDB, say) is
# never taken for the node's.
pid() {
	local f p
	f=$(pidfile "$1")
	[[ -s $f ]] || return 0
	p=$(<"$f")
	if [[ $p =~ ^[0-9]+$ ]] && [[ -r /proc/$p/cmdline ]] &&
		tr '\0' '\n' <"/proc/$p/cmdline" | grep -qxF -- "--datadir=$(dir "$1")/data"; then
		echo "$p"
		return 0
	fi
	say "$1: removing stale pid file $f (pid $p is not this node's mariadbd)" >&2
	rm -f "$f"
}

answers() { mariadb-admin --no-defaults -uroot --socket="$(sock "$1")" --connect-timeout=2 ping >/dev/null 2>&1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# init NODE PORT: a fresh datadir and the node's accounts. The accounts are
# made with the binary log off, so a replica replaying the primary's binary
# log from its start finds nothing of them.
init() {
	local name=$1 d
	d=$(dir "$name")
	[[ -d $d/data/mysql ]] && return 0
	say "$name: initialising $d/data"
	rm -rf "$d/data"
	mkdir -p "$d/data"
	chown -R mysql:mysql "$d"
	if ! mariadb-install-db --no-defaults --user=mysql --datadir="$d/data" \
		--auth-root-authentication-method=socket --skip-test-db >"$d/install.log" 2>&1; then
		cat "$d/install.log" >&2
		die "$name: mariadb-install-db failed (log above, also in $d/install.log)"
	fi
}

# launch NAME PORT SERVER_ID: start mariadbd in the background.
launch() {
	local name=$1 port=$2 id=$3 d
	d=$(dir "$name")
	if port_open "$port"; then
		die "$name: port $port is taken by another process; set BEDS_REPLICAS_PRIMARY_PORT / BEDS_REPLICAS_PORT"
	fi
	local args=(
		--no-defaults --user=mysql --datadir="$d/data" --socket="$(sock "$name")"
		--pid-file="$(pidfile "$name")" --log-error="$d/mysqld.err"
		--port="$port" --bind-address=127.0.0.1 --skip-name-resolve
		--server-id="$id" --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
		--innodb-buffer-pool-size=64M --max-connections=300
		--log-bin="$d/data/binlog" --binlog-format=ROW --gtid-strict-mode=1
		--relay-log="$d/data/relay" --log-slave-updates=0
	)
	if [[ $name != primary ]]; then
		args+=(--read-only=1)
	fi
	say "$name: starting on 127.0.0.1:$port"
	setsid /usr/sbin/mariadbd "${args[@]}" </dev/null >>"$d/mysqld.err" 2>&1 &
	local i
	for ((i = 0; i < start_timeout; i++)); do
		answers "$name" && return 0
		if [[ -z $(pid "$name") ]] && ((i > 5)); then
			tail -n 20 "$d/mysqld.err" >&2
			die "$name: mariadbd exited (log above, in $d/mysqld.err)"
		fi
		sleep 1
	done
	tail -n 20 "$d/mysqld.err" >&2
	die "$name: no answer within $start_timeout s (log: $d/mysqld.err)"
}

# accounts NODE: root over TCP from 127.0.0.1 (tests), and on the primary
# the replication user; none of it is binary-logged.
accounts() {
	local stmts="SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
	if [[ $1 == primary ]]; then
		stmts+="
CREATE USER IF NOT EXISTS '$repl_user'@'127.0.0.1' IDENTIFIED BY '$repl_pass';
GRANT REPLICATION SLAVE ON *.* TO '$repl_user'@'127.0.0.1';"
	fi
	sql "$1" "$stmts"
}

# replicate NODE: point a replica at the primary unless it already is, and
# start its threads (a no-op when they run).
replicate() {
	local name=$1
	if [[ -z $(sql "$name" "SHOW SLAVE STATUS") ]]; then
		say "$name: replicating from 127.0.0.1:$primary_port (GTID, slave_pos)"
		sql "$name" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$primary_port,
  MASTER_USER='$repl_user', MASTER_PASSWORD='$repl_pass', MASTER_USE_GTID=slave_pos,
  MASTER_CONNECT_RETRY=1"
	fi
	sql "$name" "START SLAVE" 2>/dev/null || true
}

# threads NODE: "io sql lag" of a replica (lag NULL when it is not
# replicating).
threads() {
	mariadb --no-defaults -uroot --socket="$(sock "$1")" -e "SHOW SLAVE STATUS\G" 2>/dev/null | awk -F': ' '
		/ Slave_IO_Running:/ {io=$2} / Slave_SQL_Running:/ {s=$2} / Seconds_Behind_Master:/ {lag=$2}
		END {print (io==""?"-":io), (s==""?"-":s), (lag==""?"-":lag)}'
}

wait_replicating() {
	local name=$1 i io s lag
	for ((i = 0; i < start_timeout; i++)); do
		read -r io s lag < <(threads "$name")
		[[ $io == Yes && $s == Yes ]] && return 0
		sleep 1
	done
	mariadb --no-defaults -uroot --socket="$(sock "$name")" -e "SHOW SLAVE STATUS\G" >&2 || true
	die "$name: replication threads not running within $start_timeout s (io=$io sql=$s; status above)"
}

start() {
	[[ $(id -u) == 0 ]] || die "run as root: mariadbd is started as the user mysql"
	command -v mariadb-install-db >/dev/null || die "mariadb-install-db is missing: apt-get install mariadb-server"
	mkdir -p "$state"
	local name port id
	while read -r name port id; do
		init "$name"
		if [[ -n $(pid "$name") ]] && answers "$name"; then
			say "$name: already running (pid $(pid "$name"), port $port)"
		else
			launch "$name" "$port" "$id"
		fi
		accounts "$name"
	done < <(nodes)
	while read -r name port id; do
		[[ $name == primary ]] && continue
		replicate "$name"
		wait_replicating "$name"
	done < <(nodes)
	where
}

where() {
	local name port id
	while read -r name port id; do
		say "$name: 127.0.0.1:$port, server_id $id, pid $(pid "$name"), socket $(sock "$name"), log $(dir "$name")/mysqld.err"
	done < <(nodes)
	say "DSNs: primary root@tcp(127.0.0.1:$primary_port)/, replicas $(replica_dsns)"
}

replica_dsns() {
	local name port id out=()
	while read -r name port id; do
		[[ $name == primary ]] || out+=("root@tcp(127.0.0.1:$port)/")
	done < <(nodes)
	(
		IFS=,
		echo "${out[*]}"
	)
}

# shutdown_node NODE: SHUTDOWN, bounded wait, then SIGKILL.
shutdown_node() {
	local name=$1 p i
	p=$(pid "$name")
	if [[ -z $p ]]; then
		say "$name: not running"
		return 0
	fi
	say "$name: stopping (pid $p)"
	mariadb-admin --no-defaults -uroot --socket="$(sock "$name")" --connect-timeout=2 shutdown >/dev/null 2>&1 ||
		kill -TERM "$p" 2>/dev/null || true
	for ((i = 0; i < stop_timeout * 5; i++)); do
		[[ -d /proc/$p ]] || {
			rm -f "$(pidfile "$name")"
			return 0
		}
		sleep 0.2
	done
	say "$name: still running after $stop_timeout s; SIGKILL"
	kill -KILL "$p" 2>/dev/null || true
	rm -f "$(pidfile "$name")"
}

stop() {
	local name port id
	# Replicas first: a primary going away first only makes them retry.
	while read -r name port id; do
		[[ $name == primary ]] || shutdown_node "$name"
	done < <(nodes)
	shutdown_node primary
}

replica_arg() {
	[[ ${1:-} =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= count)) || die "replica number 1..$count expected, got '${1:-}'"
}

status() {
	local name port id p ok=0 io s lag
	while read -r name port id; do
		p=$(pid "$name")
		if [[ -z $p ]] || ! answers "$name"; then
			say "$name: 127.0.0.1:$port not running"
			ok=1
			continue
		fi
		if [[ $name == primary ]]; then
			say "$name: 127.0.0.1:$port pid $p, binlog at $(sql "$name" "SELECT @@gtid_binlog_pos")"
			continue
		fi
		read -r io s lag < <(threads "$name")
		say "$name: 127.0.0.1:$port pid $p, io thread $io, sql thread $s, seconds behind $lag"
		[[ $io == Yes && $s == Yes ]] || ok=1
	done < <(nodes)
	return $ok
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
env)
	echo "export BEDS_TEST_MARIADB_PRIMARY_DSN='root@tcp(127.0.0.1:$primary_port)/'"
	echo "export BEDS_TEST_MARIADB_REPLICA_DSNS='$(replica_dsns)'"
	;;
stop-replica)
	replica_arg "${2:-}"
	shutdown_node "replica$2"
	;;
kill-replica)
	replica_arg "${2:-}"
	p=$(pid "replica$2")
	[[ -n $p ]] || die "replica$2: not running"
	say "replica$2: SIGKILL (pid $p)"
	kill -KILL "$p"
	for ((i = 0; i < stop_timeout * 5; i++)); do
		[[ -d /proc/$p ]] || break
		sleep 0.2
	done
	;;
start-replica)
	replica_arg "${2:-}"
	[[ $(id -u) == 0 ]] || die "run as root: mariadbd is started as the user mysql"
	if [[ -n $(pid "replica$2") ]] && answers "replica$2"; then
		say "replica$2: already running"
	else
		launch "replica$2" $((replica_port + $2 - 1)) $(($2 + 1))
	fi
	replicate "replica$2"
	wait_replicating "replica$2"
	;;
reset)
	stop
	say "deleting $state"
	rm -rf "$state"
	;;
*)
	echo "usage: $0 start|stop|status|env|reset|stop-replica N|kill-replica N|start-replica N" >&2
	exit 2
	;;
esac

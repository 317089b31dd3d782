#!/usr/bin/env bash
# Quorum against classic queues, in one run: BEDS's point-read and create
# throughput on the three-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh,
# once with beds.events a classic queue and once a quorum queue replicated
# on all three nodes, rounds alternating (classic, quorum, then quorum,
# classic...), medians reported with the ratio quorum / classic. How
# docs/cluster.md's figures were measured.
#
#   scripts/bench-queues.sh                 # 64 clients, 3 rounds of 8 s per op and queue type
#   BENCH_ROUNDS=5 BENCH_CLIENTS=16 scripts/bench-queues.sh
#
# Two appservers (built here) serve the same database (beds_qbench, from
# deploy/mariadb/*.sql) through two virtual hosts of the cluster,
# beds-qbench-classic and beds-qbench-quorum; each bedsctl bench run loads
# one of them while the other idles. Every connection, the appservers' and
# the bench's, goes to node 1 (no amqp.addresses), so both queues are
# placed there (a classic queue on the declaring connection's node, a
# quorum queue's leader likewise) and the difference measured is the
# quorum queue's replication to the other two nodes, not where queues and
# connections happened to land. The
# cluster is started if it does not run (and stopped again at the end);
# everything else made here is removed on exit. It holds
# /tmp/beds-bench.lock, as every bench on this machine does, so no two
# benches measure each other.
#
# Environment: BENCH_ROUNDS (3), BENCH_CLIENTS (64), BENCH_DURATION (8s),
# BENCH_WARMUP (2s), BENCH_OPS ("point-read create"); the cluster's
# BEDS_RMQ_* (scripts/rabbitmq-cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-64}
duration=${BENCH_DURATION:-8s}
warmup=${BENCH_WARMUP:-2s}
ops=${BENCH_OPS:-point-read create}
db=beds_qbench
dsn="root@tcp(127.0.0.1:3306)/$db"
cluster=$root/scripts/rabbitmq-cluster.sh
kinds=(classic quorum)
declare -A http=([classic]=127.0.0.1:18091 [quorum]=127.0.0.1:18092)

say() { echo "bench-queues.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}
command -v jq >/dev/null || die "jq is needed to read bedsctl bench --json"

exec 8>/tmp/beds-bench.lock
if ! flock -n 8; then
	say "waiting for /tmp/beds-bench.lock: another bench is running"
	flock 8
fi

work=$(mktemp -d)
started_cluster=
declare -A node=()
cleanup() {
	local k
	for k in "${!node[@]}"; do
		kill "${node[$k]}" 2>/dev/null && wait "${node[$k]}" 2>/dev/null
	done
	mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db" || true
	for k in "${kinds[@]}"; do
		rabbitmqctl -n "$node1" -q delete_vhost "beds-qbench-$k" >/dev/null 2>&1 || true
	done
	[[ -n $started_cluster ]] && "$cluster" stop >&2
	rm -rf "$work"
}

node1=$("$cluster" nodes | awk 'NR == 1 { print $2 }')
[[ -n $node1 ]] || die "scripts/rabbitmq-cluster.sh nodes named no node"
trap cleanup EXIT
if ! "$cluster" status >/dev/null 2>&1; then
	say "starting the RabbitMQ cluster"
	started_cluster=1
	"$cluster" start >&2
fi
eval "$("$cluster" addresses)" # BEDS_AMQP_URL (node 1, vhost beds) and BEDS_AMQP_ADDRESSES
base_url=${BEDS_AMQP_URL%/*}

go build -o "$work/appserver" ./services/appserver
go build -o "$work/bedsctl" ./shared/cmd/bedsctl

mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
for f in deploy/mariadb/*.sql; do mariadb -uroot -h127.0.0.1 "$db" <"$f"; done
mkdir "$work/templates"
for f in templates/*.toml; do
	[[ $(awk -F'"' '/^name *=/ { print $2; exit }' "$f") == users ]] && cp "$f" "$work/templates/"
done

for k in "${kinds[@]}"; do
	vhost=beds-qbench-$k
	rabbitmqctl -n "$node1" -q delete_vhost "$vhost" >/dev/null 2>&1 || true
	rabbitmqctl -n "$node1" -q add_vhost "$vhost"
	rabbitmqctl -n "$node1" -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
	mkdir "$work/config-$k"
	cp deploy/config/beds.toml "$work/config-$k/"
	printf '[amqp]\nqueue_type = "%s"\n' "$k" >"$work/config-$k/env_dev.toml"
	(cd "$work" && BEDS_CONFIG_DIR="$work/config-$k" BEDS_TEMPLATE_DIR="$work/templates" \
		BEDS_AMQP_URL="$base_url/$vhost" BEDS_NODE_NAME="qbench-$k" \
		BEDS_MARIADB_DSN="$dsn" BEDS_HTTP_ADDR="${http[$k]}" BEDS_LOG_LEVEL=warn \
		exec ./appserver >"$work/appserver-$k.log" 2>&1) &
	node[$k]=$!
done
for k in "${kinds[@]}"; do
	for _ in $(seq 300); do
		curl -fs "http://${http[$k]}/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fs "http://${http[$k]}/readyz" >/dev/null || {
		cat "$work/appserver-$k.log" >&2
		die "the $k appserver did not get ready"
	}
done
# What each virtual host's beds.events is, as RabbitMQ reports it.
for k in "${kinds[@]}"; do
	rabbitmqctl -n "$node1" -q list_queues -p "beds-qbench-$k" --no-table-headers name type pid leader members |
		awk -v k="$k" '$1 == "beds.events" { $1 = ""; print "beds.events in beds-qbench-" k " (type, pid, leader, members):" $0 }'
done

# One bedsctl bench run per (op, round, queue type), alternating which
# type goes first from round to round.
for op in $ops; do
	for ((r = 1; r <= rounds; r++)); do
		order=("${kinds[@]}")
		((r % 2 == 0)) && order=("${kinds[1]}" "${kinds[0]}")
		for k in "${order[@]}"; do
			say "$op, round $r of $rounds: $k"
			"$work/bedsctl" bench --json --url "$base_url/beds-qbench-$k" --op "$op" --clients "$clients" \
				--duration "$duration" --warmup "$warmup" --rounds 1 \
				--node-metrics "http://${http[$k]}/metrics" >"$work/$op-$k-$r.json" ||
				die "bedsctl bench --op $op against $k failed"
		done
	done
done

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "BEDS on a 3-node RabbitMQ cluster, $clients clients, $rounds alternating rounds of $duration per op and queue type, medians"
echo "($(nproc) cores, RabbitMQ $(rabbitmqctl -n "$node1" -q eval 'rabbit_misc:version().' | tr -d '"'); every connection to node 1; beds.events classic on node 1 vs quorum led by node 1, replicated on all 3)"
echo
echo "| op | classic tp/s | quorum tp/s | quorum / classic | classic p50 ms | quorum p50 ms | classic p99 ms | quorum p99 ms | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
for op in $ops; do
	declare -A tps=() p50=() p99=()
	errors=0
	for k in "${kinds[@]}"; do
		tps[$k]=$(cat "$work/$op-$k-"*.json | jq -r '.runs[] | select(.target == "beds") | .tps' | median)
		p50[$k]=$(cat "$work/$op-$k-"*.json | jq -r '.runs[] | select(.target == "beds") | .latency.p50_ns / 1e6' | median)
		p99[$k]=$(cat "$work/$op-$k-"*.json | jq -r '.runs[] | select(.target == "beds") | .latency.p99_ns / 1e6' | median)
		errors=$((errors + $(cat "$work/$op-$k-"*.json | jq '[.runs[] | .errors // {} | to_entries[] | .value] | add // 0' | paste -sd+ | bc)))
	done
	awk -v op="$op" -v c="${tps[classic]}" -v q="${tps[quorum]}" -v c50="${p50[classic]}" -v q50="${p50[quorum]}" \
		-v c99="${p99[classic]}" -v q99="${p99[quorum]}" -v e="$errors" \
		'BEGIN { printf "| %s | %.0f | %.0f | **%.2f×** | %.2f | %.2f | %.2f | %.2f | %d |\n", op, c, q, q / c, c50, q50, c99, q99, e }'
	unset tps p50 p99
done

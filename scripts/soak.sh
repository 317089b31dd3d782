#!/usr/bin/env bash
# Soak: a local BEDS cluster (scripts/cluster.sh) under a steady mixed load
# for DURATION, each node's RSS, Go heap, goroutines, open descriptors and
# connections sampled every few seconds, then a verdict on their growth
# (slope per hour after a warm-up) and a plot. docs/soak.md explains the
# figures. Not part of `make test`; `make soak-short` is its short form.
#
# Usage: scripts/soak.sh DURATION [flags]
#        scripts/soak.sh --report-only [--out DIR] [report flags]
#
#   DURATION            how long to load and sample, a Go duration (35m, 3m)
#   --out DIR           samples.csv, report.md, soak.svg, bench.txt and the
#                       nodes' logs go here (default results/soak)
#   --interval D        time between samples (default 5s)
#   --clients N         bench clients, one request in flight each (default 8)
#   --rate R            requests per second in all (default 100)
#   --mix M             the bench's mix (default read=80,create=10,update=10)
#   --appservers N      appserver nodes (default 2)
#   --report-only       no run: rewrite DIR's report and plot from its
#                       samples.csv (to try other bounds)
#   any other flag      goes to `soak report`: --warmup D and the bounds
#                       --max-rss-mib-per-h, --max-heap-mib-per-h,
#                       --max-goroutines-per-h, --max-fds-per-h,
#                       --max-conns-per-h (see `soak report -h`)
#
# Exit status: 0 when the load ran without errors and no slope passed its
# bound; 1 otherwise (the report says which); 2 for bad usage.
#
# It uses names of its own so that it never meets the tests, scripts/bench.sh
# or a cluster.sh cluster: the MariaDB and MongoDB databases beds_soak, the
# vhost of the same name with dashes (beds-soak), the state folder
# /tmp/beds-soak and the ops ports from 18280. BEDS_SOAK_DB, BEDS_SOAK_DIR
# and BEDS_SOAK_PORT change them, so that two soaks can run side by side
# (make soak-short uses its own). It drops the MariaDB database and the
# vhost at the end; the MongoDB database stays (this machine has no mongosh
# to drop it) and is reused by the next soak of the same name.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() {
	echo "soak.sh: $*" >&2
	exit 2
}
say() { echo "soak.sh: $*"; }

duration= out=$root/results/soak interval=5s clients=8 rate=100
mix=read=80,create=10,update=10 appservers=2 report_only=0
report_args=()
while (($#)); do
	case $1 in
	--out) out=${2:?--out needs a folder}; shift 2 ;;
	--interval) interval=${2:?}; shift 2 ;;
	--clients) clients=${2:?}; shift 2 ;;
	--rate) rate=${2:?}; shift 2 ;;
	--mix) mix=${2:?}; shift 2 ;;
	--appservers) appservers=${2:?}; shift 2 ;;
	--report-only) report_only=1; shift ;;
	--*=*) report_args+=("$1"); shift ;;
	--*) report_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
	*)
		[[ -z $duration ]] || die "unexpected argument $1"
		duration=$1
		shift
		;;
	esac
done
[[ $report_only == 1 || -n $duration ]] || die "usage: scripts/soak.sh DURATION [flags] (see the head of this script)"
[[ -z $duration || $duration =~ ^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$ ]] || die "DURATION $duration: a Go duration, e.g. 35m or 2m30s"

state=${BEDS_SOAK_DIR:-/tmp/beds-soak}
port=${BEDS_SOAK_PORT:-18280}
db=${BEDS_SOAK_DB:-beds_soak}
[[ $db =~ ^[a-z][a-z0-9_]{0,40}$ ]] || die "BEDS_SOAK_DB=$db: lower-case letters, digits and _"
vhost=${db//_/-}
mkdir -p "$state/bin" "$out"
out=$(cd "$out" && pwd)

# The reproducing command, as the report shows it.
command_line="scripts/soak.sh ${duration:+$duration }--interval $interval --clients $clients --rate $rate --mix $mix --appservers $appservers${report_args[*]:+ ${report_args[*]}}"

(cd tools/soak && go build -o "$state/bin/soak" .) || die "go build of tools/soak failed"

report() {
	local load=()
	[[ -f $out/bench.txt ]] && load=(--load "$out/bench.txt")
	"$state/bin/soak" report --in "$out/samples.csv" --md "$out/report.md" --plot "$out/soak.svg" \
		"${load[@]}" --command "$command_line" "${report_args[@]}"
}

if [[ $report_only == 1 ]]; then
	[[ -s $out/samples.csv ]] || die "$out/samples.csv: no samples to report on (run a soak first, or --out)"
	# The run's command, and how this report was made from its samples.
	if [[ -s $out/command ]]; then
		command_line="$(<"$out/command"); reported with scripts/soak.sh --report-only${report_args[*]:+ ${report_args[*]}}"
	fi
	report
	exit $?
fi

export BEDS_CLUSTER_DIR=$state BEDS_CLUSTER_PORT=$port BEDS_CLUSTER_APPSERVERS=$appservers
export BEDS_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
export BEDS_MARIADB_DSN="root@tcp(127.0.0.1:3306)/$db"
export BEDS_MONGO_URI="mongodb://127.0.0.1:27017/$db"
export BEDS_LOG_LEVEL=${BEDS_LOG_LEVEL:-warn}

bench_pid= sampler_pid=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $bench_pid ]] && kill -TERM "$bench_pid" 2>/dev/null && wait "$bench_pid" 2>/dev/null
	[[ -n $sampler_pid ]] && kill -TERM "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
	scripts/cluster.sh down >/dev/null 2>&1 || true
	for f in "$state"/*.log; do [[ -f $f ]] && cp -f "$f" "$out/" || true; done
	mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
	rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$state/bin/bedsctl" ./shared/cmd/bedsctl || die "go build of bedsctl failed"

say "database $db, vhost $vhost, mongo $db"
mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
for f in deploy/mariadb/*.sql; do mariadb -uroot -h127.0.0.1 "$db" <"$f"; done
rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
rabbitmqctl -q add_vhost "$vhost"
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
"$state/bin/bedsctl" schema apply --config-dir deploy/config --dir templates --deploy deploy >/dev/null

scripts/cluster.sh up

nodes=()
while read -r name role p; do
	pid=$(<"$state/$name.pid")
	nodes+=(--node "$name=$pid,http://127.0.0.1:$p/metrics")
done <"$state/nodes"

echo "$command_line" >"$out/command"
rm -f "$out/samples.csv" "$out/bench.txt" "$out/report.md" "$out/soak.svg"
say "load: $clients clients, $rate req/s, mix $mix, for $duration; sampling every $interval into $out"
"$state/bin/bedsctl" bench --url "$BEDS_AMQP_URL" --op mixed --mix "$mix" --clients "$clients" --rate "$rate" \
	--duration "$duration" --warmup 0s >"$out/bench.txt" 2>"$out/bench.log" &
bench_pid=$!
"$state/bin/soak" sample --out "$out/samples.csv" --interval "$interval" --duration "$duration" "${nodes[@]}" 2>"$out/sample.log" &
sampler_pid=$!
# The sampler stops after DURATION, or when the load ends: a bench that
# could not start or failed (its exit status says so below), or one done
# a moment before the sampler's last round.
while kill -0 "$sampler_pid" 2>/dev/null; do
	if ! kill -0 "$bench_pid" 2>/dev/null; then
		kill -TERM "$sampler_pid" 2>/dev/null || true
		break
	fi
	sleep 1
done
sample_rc=0
wait "$sampler_pid" || sample_rc=$?
sampler_pid=
bench_rc=0
wait "$bench_pid" || bench_rc=$?
bench_pid=
# Every node still runs: none crashed under the load.
crashed=()
while read -r name role p; do
	pid=$(<"$state/$name.pid")
	kill -0 "$pid" 2>/dev/null || crashed+=("$name")
done <"$state/nodes"
scripts/cluster.sh down || say "a node did not drain within its stop timeout (see its log in $out)"

rc=0
report || rc=$?
((sample_rc == 0)) || { say "the sampler failed ($out/sample.log)"; rc=1; }
((bench_rc == 0)) || { say "the load had errors or failed: $out/bench.txt, $out/bench.log"; rc=1; }
((${#crashed[@]} == 0)) || { say "nodes exited during the soak: ${crashed[*]}"; rc=1; }
exit $rc

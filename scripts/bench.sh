#!/usr/bin/env bash
# Runs `bedsctl bench` against a freshly built appserver on this machine's
# servers, the way docs/performance.md's tables were measured: its own
# database (beds_bench, from every deploy/mariadb/*.sql in order) and vhost
# (beds-bench), only the users template and the orders templates --op
# include reads (orders, REL user_orders), the ops endpoint on :18081 for
# the node's CPU. Everything it creates is removed on exit. Arguments go to
# bedsctl bench; the default is the 64-client point read against the
# baseline.
#
#   scripts/bench.sh                                   # 64 clients, point read
#   scripts/bench.sh --op point-read --clients 1 --rounds 3
#   scripts/bench.sh --op batch --batch 1,4,16,64 --clients 64 --rounds 3 --duration 8s
#   scripts/bench.sh --op delete --baseline-durable --baseline-confirm --clients 64 --rounds 3 --duration 8s
#
# The report's rabbitmq µs/req and mariadb µs/req columns are the CPU per
# request of this machine's RabbitMQ node on 127.0.0.1:5672 (its pid from
# `rabbitmqctl eval 'os:getpid().'`, else its node pid file) and of the
# MariaDB server of the DSN (its pid from the file SELECT @@pid_file
# names), passed as --server-pid; a pid that cannot be read leaves its
# column out, with a note.
#
# BENCH_NODE_CONFIG, when set, is TOML added to the node's config (its
# env_dev.toml), e.g. BENCH_NODE_CONFIG=$'[lineage]\nstore = ""'.
#
# BENCH_ACCESS=1 measures what enforcing [access] costs instead of running
# the baseline: it starts a tercero node too, registers and logs in a
# member, and compares point reads of users by that member (a session the
# appserver resolves once and then finds in its cache; users' [access]
# lets members read) with the same reads of users_open, a template
# without [access] over the same rows (view vw_uso on tbl_usr), by the
# trusted guest, alternating on the same node:
#
#   BENCH_ACCESS=1 scripts/bench.sh --op point-read --clients 64 --rounds 3 --duration 8s
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
db=beds_bench
vhost=beds-bench
http=127.0.0.1:18081
dsn="root@tcp(127.0.0.1:3306)/$db"
url="amqp://guest:guest@127.0.0.1:5672/$vhost"

cleanup() {
  [[ -n ${node:-} ]] && kill "$node" 2>/dev/null && wait "$node" 2>/dev/null
  [[ -n ${tercero:-} ]] && kill "$tercero" 2>/dev/null && wait "$tercero" 2>/dev/null
  mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db" || true
  rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/appserver" ./services/appserver
go build -o "$work/bedsctl" ./shared/cmd/bedsctl
[[ -n ${BENCH_ACCESS:-} ]] && go build -o "$work/tercero" ./services/tercero

mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
for f in deploy/mariadb/*.sql; do mariadb -uroot -h127.0.0.1 "$db" <"$f"; done
rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
rabbitmqctl -q add_vhost "$vhost"
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
mkdir "$work/templates"
# By template name, whatever the file is called; a template of another
# store (MongoDB) would need a server this script does not set up.
for f in templates/*.toml; do
  case $(awk -F'"' '/^name *=/ { print $2; exit }' "$f") in
    users | orders | user_orders) cp "$f" "$work/templates/" ;;
  esac
done

if [[ -n ${BENCH_ACCESS:-} ]]; then
  # users_open: users' rows through a view of its own, without [access].
  sed -e '0,/^name *=/s/^name *=.*/name = "users_open"/' -e 's/^tla *=.*/tla = "uso"/' -e 's/"vw_usr"/"vw_uso"/' \
    -e '/^\[access\]/,$d' -e '/^create *=\|^update *=\|^delete *=/d' \
    -e 's/^allow *=.*/allow = ["read", "count"]/' templates/users_rec.toml >"$work/templates/users_open_rec.toml"
  mariadb -uroot -h127.0.0.1 "$db" -e "CREATE VIEW vw_uso AS SELECT usr_id AS uso_id, usr_email AS uso_email,
    usr_name AS uso_name, usr_age AS uso_age, usr_score AS uso_score, usr_active AS uso_active,
    usr_prefs AS uso_prefs, usr_created AS uso_created FROM tbl_usr"
  BENCH_NODE_CONFIG=$'[templates]\ncheck = "warn"\n'"${BENCH_NODE_CONFIG:-}"
fi

confdir="$root/deploy/config"
if [[ -n ${BENCH_NODE_CONFIG:-} ]]; then
  confdir="$work/config"
  mkdir "$confdir"
  cp deploy/config/beds.toml "$confdir/"
  # After the development layer, which trusts guest, the bench's own.
  { cat deploy/config/env_dev.toml; printf '\n%s\n' "$BENCH_NODE_CONFIG"; } >"$confdir/env_dev.toml"
fi
(cd "$work" && BEDS_CONFIG_DIR="$confdir" BEDS_TEMPLATE_DIR="$work/templates" \
  BEDS_AMQP_URL="$url" BEDS_MARIADB_DSN="$dsn" BEDS_HTTP_ADDR="$http" BEDS_LOG_LEVEL=warn \
  exec ./appserver) &
node=$!
for _ in $(seq 100); do
  curl -fs "http://$http/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://$http/readyz" >/dev/null || { echo "bench: the appserver did not get ready" >&2; exit 1; }

# The servers' pids, for --server-pid. Not pgrep -x beam.smp: test
# clusters run more of them (and the replica pair more mariadbd).
server_pids=()
server_pid() { # name pid: pass it when /proc has it
  if [[ $2 =~ ^[0-9]+$ && -r /proc/$2/stat ]]; then
    server_pids+=(--server-pid "$1=$2")
  else
    echo "bench: no readable pid for $1 (got '${2:-}'); its CPU column is left out" >&2
  fi
}
rabbit_pid=$(rabbitmqctl -q eval 'os:getpid().' 2>/dev/null | tr -d '"' || true)
if [[ ! $rabbit_pid =~ ^[0-9]+$ ]]; then
  pidfile=${RABBITMQ_PID_FILE:-}
  if [[ -z $pidfile ]]; then
    shopt -s nullglob
    files=(/var/lib/rabbitmq/mnesia/*.pid)
    shopt -u nullglob
    [[ ${#files[@]} -eq 1 ]] && pidfile=${files[0]}
  fi
  rabbit_pid=$([[ -n $pidfile && -r $pidfile ]] && tr -dc '0-9' <"$pidfile" || true)
fi
server_pid rabbitmq "$rabbit_pid"
pidfile=$(mariadb -uroot -h127.0.0.1 -Nse 'SELECT @@pid_file' 2>/dev/null || true)
server_pid mariadb "$([[ -n $pidfile && -r $pidfile ]] && tr -dc '0-9' <"$pidfile" || true)"

args=("$@")
[[ ${#args[@]} -eq 0 ]] && args=(--op point-read --clients 64 --rounds 3 --duration 8s)
compare=(--baseline --dsn "$dsn")
if [[ -n ${BENCH_ACCESS:-} ]]; then
  (cd "$work" && BEDS_CONFIG_DIR="$confdir" BEDS_AMQP_URL="$url" BEDS_MARIADB_DSN="$dsn" \
    BEDS_HTTP_ADDR=127.0.0.1:18082 BEDS_LOG_LEVEL=warn BEDS_NODE_NAME=bench-tercero exec ./tercero) &
  tercero=$!
  for _ in $(seq 100); do
    curl -fs http://127.0.0.1:18082/readyz >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fs http://127.0.0.1:18082/readyz >/dev/null || { echo "bench: tercero did not get ready" >&2; exit 1; }
  export BEDS_SESSION_FILE="$work/session"
  password=$(head -c 24 /dev/urandom | base64)
  "$work/bedsctl" user add bench-member --roles member --password-stdin --url "$url" <<<"$password" >/dev/null
  "$work/bedsctl" login bench-member --password-stdin --url "$url" <<<"$password"
  compare=(--session --against users_open)
fi
"$work/bedsctl" bench --url "$url" "${compare[@]}" \
  --node-metrics "http://$http/metrics" "${server_pids[@]}" "${args[@]}"

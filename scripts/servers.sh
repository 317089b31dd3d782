#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up on this machine: installs
# from Debian's packages what is missing (RabbitMQ, MariaDB and its client),
# starts what is stopped (RabbitMQ on 5672, MariaDB on 3306), builds and
# starts the FerretDB stand-in for MongoDB (27017, from deploy/ferretdb), and
# starts the MariaDB primary and replica of the replica tests (3310, 3311:
# scripts/mariadb-replicas.sh).
# Idempotent; exits non-zero, saying which, if one cannot be brought up.
set -euo pipefail
cd "$(dirname "$0")/.."

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds
  for _ in $(seq "$3"); do port_open "$2" && return 0; sleep 1; done
  echo "servers: $1 did not open port $2 within $3 s" >&2
  return 1
}

# Debian packages of what the tests run, by the command that shows each.
missing=()
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
[[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
if ((${#missing[@]})); then
  echo "servers: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! port_open 5672; then
  echo "servers: starting RabbitMQ"
  rabbitmq-server -detached
fi
wait_port RabbitMQ 5672 90
rabbitmqctl -q await_startup >/dev/null 2>&1 || true

if ! port_open 3306; then
  echo "servers: starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
fi
wait_port MariaDB 3306 60
for _ in $(seq 30); do mariadb-admin -uroot -h127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done

bash deploy/ferretdb/run.sh start
bash scripts/mariadb-replicas.sh start
echo "servers: RabbitMQ :5672, MariaDB :3306, MongoDB wire (FerretDB) :27017 are up," \
  "and a MariaDB primary :${BEDS_REPLICAS_PRIMARY_PORT:-3310} with replicas from :${BEDS_REPLICAS_PORT:-3311}" \
  "(scripts/mariadb-replicas.sh status)"

#!/bin/bash
# The rabbitmq service's entrypoint (docker-compose.yml): runs the image's
# own entrypoint with its arguments (rabbitmq-server) in the background,
# waits until the node runs, sets BEDS's accounts with accounts.sh (beside
# this file), and then marks them applied: the service's healthcheck passes
# only after that, so no role starts before its account exists. It does so
# at every start, so a changed password in .env takes effect at the next
# `docker compose up`. SIGTERM and SIGINT are passed to the server; the
# container exits with the server's status. If the accounts cannot be set,
# the server is stopped and the container exits 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
marker=${ACCOUNTS_MARKER:-/tmp/beds-accounts-applied} # the healthcheck tests this path
rm -f "$marker"

docker-entrypoint.sh "$@" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true' TERM INT

until rabbitmq-diagnostics -q check_running >/dev/null 2>&1; do
	if ! kill -0 "$server" 2>/dev/null; then
		wait "$server" || exit $?
		exit 1
	fi
	sleep 2
done
if bash "$here/accounts.sh"; then
	touch "$marker"
else
	echo "entrypoint.sh: the BEDS accounts could not be set (above); stopping RabbitMQ" >&2
	kill -TERM "$server" 2>/dev/null || true
	wait "$server" || true
	exit 1
fi

# A trapped signal interrupts wait: wait again until the server is gone,
# then take its own status (bash keeps it for the last wait).
while kill -0 "$server" 2>/dev/null; do
	wait "$server" || true
done
status=0
wait "$server" || status=$?
exit "$status"

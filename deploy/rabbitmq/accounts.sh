#!/bin/bash
# BEDS's RabbitMQ accounts, with permissions that say what each does.
# Idempotent: creates each user or resets its password, then sets its
# permissions on the virtual host, so a changed password in .env takes
# effect at the next start. Run against a running node (rabbitmqctl).
#
#   AMQP_VHOST          virtual host (default /)
#   AMQP_APP_USER       applications: publish requests to exchange beds,
#   AMQP_APP_PASSWORD     read their own replies (direct reply-to); no
#                             configure, no reading any beds.* queue
#   AMQP_NODE_USER      BEDS nodes: declare the topology (mq.Declare),
#   AMQP_NODE_PASSWORD    consume beds.events and beds.tercero, publish
#                             replies (default exchange) and dead letters
#                             (beds.dlx), and requests to beds (appserver ->
#                             tercero)
#   RABBITMQCTL             the command (default rabbitmqctl)
#
# The operators' account (administrator, every permission) is the image's
# RABBITMQ_DEFAULT_USER; guest does not exist when that is set.
# Passwords go to rabbitmqctl on standard input, never on a command line.
# docs/deployment.md (least privilege) explains every regular expression;
# services/appserver's TestLeastPrivilegeRabbitMQ proves them.
set -euo pipefail

vhost=${AMQP_VHOST:-/}
ctl=${RABBITMQCTL:-rabbitmqctl}

# Resource names (exchanges and queues) each permission matches. RabbitMQ
# checks "configure" to declare or delete, "write" to publish to an
# exchange or bind a queue (the queue side), "read" to consume a queue or
# bind from an exchange (the exchange side); declaring a queue with a
# dead-letter exchange also needs read on the queue and write on the
# exchange. The default exchange is named amq.default here.
topology='beds|beds\.dlx|beds\.events|beds\.tercero|beds\.dead'
node_configure="^($topology)\$"
node_write="^($topology|amq\\.default)\$"
node_read='^(beds|beds\.dlx|beds\.events|beds\.tercero)$'
app_configure='^$'
app_write='^beds$'
app_read='^$'

account() { # user password configure write read
	local user=$1 password=$2
	if [ -z "$user" ] || [ -z "$password" ]; then
		echo "accounts.sh: a user name and a password are both required" >&2
		return 1
	fi
	if "$ctl" -q list_users --no-table-headers | cut -f1 | grep -qxF -- "$user"; then
		printf '%s\n' "$password" | "$ctl" -q change_password -- "$user"
	else
		printf '%s\n' "$password" | "$ctl" -q add_user -- "$user"
	fi
	"$ctl" -q set_user_tags "$user"
	"$ctl" -q set_permissions -p "$vhost" -- "$user" "$3" "$4" "$5"
}

account "${AMQP_NODE_USER:?}" "${AMQP_NODE_PASSWORD:?}" "$node_configure" "$node_write" "$node_read"
account "${AMQP_APP_USER:?}" "${AMQP_APP_PASSWORD:?}" "$app_configure" "$app_write" "$app_read"
echo "accounts.sh: $AMQP_NODE_USER (nodes) and $AMQP_APP_USER (applications) set on vhost $vhost"

#!/bin/sh
# The compose broker: RabbitMQ, then one account per service (CONTRACT.md "Producers are authenticated").
# Each service may configure, read and write only its own queues and the two exchanges, and publish to
# dx.events only under its own routing-key prefix (a topic permission). The same rules as
# `python -m dx_tools.broker_users` gives a broker outside compose. Passwords come from .env.
set -eu
docker-entrypoint.sh rabbitmq-server &
server=$!
rabbitmqctl --timeout 300 await_startup >/dev/null
for service in nomination training progression reporting; do
  variable="DX_$(echo "$service" | tr '[:lower:]' '[:upper:]')_AMQP_PASSWORD"
  password=$(printenv "$variable" || true)
  if [ -z "$password" ]; then
    echo "$variable is not set in .env" >&2
    kill "$server"
    exit 1
  fi
  allowed="^${service}\\.|^dx\\.events\$|^dx\\.dead-letter\$"
  rabbitmqctl -q add_user "dx-$service" "$password" 2>/dev/null \
    || rabbitmqctl -q change_password "dx-$service" "$password"
  rabbitmqctl -q set_permissions -p / "dx-$service" "$allowed" "$allowed" "$allowed"
  rabbitmqctl -q set_topic_permissions -p / "dx-$service" dx.events "^${service}\\." ".*"
done
touch /var/lib/rabbitmq/service-users-ready
wait "$server"

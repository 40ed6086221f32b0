#!/bin/sh
# Starts Redis with its password from $REDIS_PASSWORD_FILE, given as configuration on standard
# input: never on the command line, where `ps` and `docker inspect` would show it. Data in /data,
# append-only. Arguments go on to redis-server.
set -eu
password=$(cat "$REDIS_PASSWORD_FILE")
if [ -z "$password" ]; then
    echo "redis-start: $REDIS_PASSWORD_FILE is empty" >&2
    exit 1
fi
exec redis-server - "$@" <<CONFIG
requirepass "$password"
appendonly yes
dir /data
CONFIG

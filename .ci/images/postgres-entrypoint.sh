#!/bin/sh
# The entrypoint of isotest/postgres:15-bookworm (.ci/images.sh): the official postgres image's conventions
# on Debian's postgresql-15, so a definition written for `postgres:16` runs on it unchanged:
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER (default postgres),
#   POSTGRES_DB (default: the user), PGDATA; `docker run IMAGE -c fsync=off` passes flags to postgres.
set -eu

if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
[ "$1" = postgres ] || exec "$@"

: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
# /run may be a fresh tmpfs (the built-in engine mounts one, Docker does not): the socket goes to /tmp then.
sockets=/var/run/postgresql
if ! { mkdir -p "$sockets" 2>/dev/null && [ -w "$sockets" ]; }; then
    sockets=/tmp
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "docker-entrypoint: POSTGRES_PASSWORD is not set: set it, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
        exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
    # As the official image: a socket-only server for the set-up, so its "ready" line comes first and the
    # real one second (waits written for that image count two).
    pg_ctl -D "$PGDATA" -w -s -o "-c listen_addresses='' -c unix_socket_directories=$sockets" start
    if [ "$db" != postgres ]; then
        psql -q -v ON_ERROR_STOP=1 -h "$sockets" -U "$user" -d postgres -c "CREATE DATABASE \"$db\""
    fi
    pg_ctl -D "$PGDATA" -w -s -m fast stop
    echo "docker-entrypoint: initialised $PGDATA (user $user, database $db)"
fi

exec "$@" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$sockets"

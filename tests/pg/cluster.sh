#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, never one started by hand:
#
#   tests/pg/cluster.sh start DIR     initdb in DIR, start on a free port, print the URL
#   tests/pg/cluster.sh url DIR       the URL of the cluster in DIR (to its `postgres` database)
#   tests/pg/cluster.sh createdb DIR  a fresh database in it; prints its URL
#   tests/pg/cluster.sh pause DIR     stop the server, keeping its data and port (fault tests)
#   tests/pg/cluster.sh resume DIR    start it again
#   tests/pg/cluster.sh stop DIR      stop it and remove DIR
#   tests/pg/cluster.sh bin x         the folder of PostgreSQL's programs (psql, pg_dump)
#
# initdb refuses to run as root: as root the cluster belongs to the
# `postgres` user that Debian's package creates. Durability settings are
# relaxed (fsync off): the tests kill replicas, never the machine.
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }

bindir() {
  local d
  for d in "${PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  done
  die "PostgreSQL is not installed (\`make test\` installs it with apt)"
}

# Runs a server program as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() { echo "postgres://visage@127.0.0.1:$(cat "$1/port")/${2:-postgres}"; }

server_start() {
  local dir=$1 bin
  bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
    -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/log" >&2; die "the server did not start"; }
}

cmd=${1:-}; dir=${2:-}
[ -n "$dir" ] || die "usage: cluster.sh start|url|createdb|pause|resume|stop DIR"
case $cmd in
  start)
    bin=$(bindir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || die "running as root needs the postgres user (installed with PostgreSQL)"
      chown postgres "$dir"
      chmod 755 "$dir"
    fi
    free_port >"$dir/port"
    as_owner "$bin/initdb" -D "$dir/data" -U visage --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    server_start "$dir"
    url "$dir"
    ;;
  url) url "$dir" ;;
  bin) bindir ;;
  createdb)
    name="t_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    "$(bindir)/psql" -q -X -v ON_ERROR_STOP=1 "$(url "$dir")" -c "CREATE DATABASE $name" >/dev/null
    url "$dir" "$name"
    ;;
  pause) as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
  resume) server_start "$dir" ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) die "unknown command $cmd" ;;
esac

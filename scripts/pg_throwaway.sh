#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests (Debian's `postgresql` package):
#   scripts/pg_throwaway.sh start DIR   initdb in DIR, start it listening only on a Unix socket
#                                       in DIR (no TCP), print the socket directory
#   scripts/pg_throwaway.sh stop DIR    stop it and remove DIR
# The tests connect with `psql -h DIR -U postgres` (KAM_TEST_PGHOST=DIR). As root, the server
# runs as the `postgres` user the package creates (PostgreSQL refuses to run as root).
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?a directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); else as=(); fi
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    echo "$dir"
    ;;
  stop)
    if [ -d "$dir/data" ]; then "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true; fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A streaming read replica of the system's PostgreSQL, for the replica tests and benchmarks.
#
#   scripts/standby.sh start|stop|status|remove [PORT]
#
# start: a second PostgreSQL cluster (Debian's pg_createcluster, cluster `standby<PORT>`) on PORT
# (default 5433, CI's), made with `pg_basebackup -R` from the primary at 127.0.0.1:$PRIMARY_PORT
# (5432) and streaming from it; idempotent (an existing standby is started, not rebuilt). A standby
# whose WAL the primary has recycled meanwhile cannot catch up: `remove`, then `start` again.
# No replication slot is made: a slot left behind by an abandoned standby would keep the shared
# primary's WAL forever.
#
# The primary must accept replication connections from 127.0.0.1: if its pg_hba.conf has no
# `replication` line, start appends `host replication all 127.0.0.1/32 trust` (the line its `all`
# entry already grants every database) and reloads it (pg_reload_conf, no restart). This is the one
# change made to the primary, made once.
set -euo pipefail

ACTION="${1:-status}"
PORT="${2:-${STANDBY_PORT:-5433}}"
PRIMARY_PORT="${PRIMARY_PORT:-5432}"
VERSION="${PG_VERSION:-15}"
CLUSTER="standby${PORT}"
DATA="/var/lib/postgresql/${VERSION}/${CLUSTER}"
CONF="/etc/postgresql/${VERSION}/${CLUSTER}"

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
primary_sql() { psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -tAXc "$1"; }
standby_sql() { psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAXc "$1"; }

primary_allow_replication() {
  local hba
  hba="$(primary_sql 'SHOW hba_file')"
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]' "$hba"; then
    echo "standby: allowing replication connections from 127.0.0.1 in $hba" >&2
    printf '\n# streaming replica (scripts/standby.sh)\nhost replication all 127.0.0.1/32 trust\n' >> "$hba"
    primary_sql 'SELECT pg_reload_conf()' >/dev/null
  fi
  if [ "$(primary_sql 'SHOW wal_level')" = minimal ] || [ "$(primary_sql 'SHOW max_wal_senders')" = 0 ]; then
    echo "standby: the primary needs wal_level=replica and max_wal_senders > 0 (a restart)" >&2
    return 1
  fi
}

cluster_exists() { [ -f "$CONF/postgresql.conf" ] && [ -f "$DATA/PG_VERSION" ]; }

cluster_create() {
  echo "standby: creating cluster ${VERSION}/${CLUSTER} on port ${PORT} from 127.0.0.1:${PRIMARY_PORT}" >&2
  pg_dropcluster "$VERSION" "$CLUSTER" --stop >/dev/null 2>&1 || true
  pg_createcluster "$VERSION" "$CLUSTER" -p "$PORT" >/dev/null
  # The cluster's own files are replaced by the primary's (its configuration stays in $CONF).
  find "$DATA" -mindepth 1 -delete
  as_postgres pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DATA" -R -X stream -c fast
  # Small, for a shared machine; feedback keeps replay from cancelling a page's query (the primary
  # keeps the rows that query still sees), and a conflict that happens anyway waits at most 5 s.
  cat > "$CONF/conf.d/standby.conf" <<EOF
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = 5s
shared_buffers = 64MB
listen_addresses = '127.0.0.1'
EOF
  # Reached the way the primary is (trust on 127.0.0.1 and the local socket, as CI's PostgreSQL is).
  cp "$(primary_sql 'SHOW hba_file')" "$CONF/pg_hba.conf"
}

wait_streaming() {
  for _ in $(seq 1 60); do
    if [ "$(standby_sql "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null)" = streaming ]; then
      return 0
    fi
    sleep 0.5
  done
  echo "standby: port ${PORT} is not streaming from the primary" >&2
  return 1
}

case "$ACTION" in
  start)
    primary_allow_replication
    cluster_exists || cluster_create
    if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
      pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start
    fi
    if ! wait_streaming; then
      # Left behind long ago, it needs WAL the primary no longer has: made anew from a fresh copy.
      echo "standby: rebuilding ${VERSION}/${CLUSTER}" >&2
      cluster_create
      pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start
      wait_streaming
    fi
    echo "standby: ${VERSION}/${CLUSTER} streaming on 127.0.0.1:${PORT}"
    ;;
  stop)
    if cluster_exists && pg_isready -q -h 127.0.0.1 -p "$PORT"; then
      pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" stop -m fast
    fi
    ;;
  status)
    if ! cluster_exists; then echo "standby: no cluster ${VERSION}/${CLUSTER}"; exit 3; fi
    if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then echo "standby: ${VERSION}/${CLUSTER} is down"; exit 3; fi
    standby_sql "SELECT 'standby: ' || status || ' from the primary, replayed ' || pg_last_wal_replay_lsn()
                 FROM pg_stat_wal_receiver"
    ;;
  remove)
    pg_dropcluster "$VERSION" "$CLUSTER" --stop 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|stop|status|remove [PORT]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The team stack on one machine, for trying it and for the tests: PostgreSQL, an MLflow
# tracking server on it (artifacts through the server), and a Ray cluster of a head and
# one more node, all on 127.0.0.1 of a network namespace of their own.
#
#   eval "$(scripts/team_stack.sh start)"   # prints MLFLOW_TRACKING_URI=... RAY_ADDRESS=...
#   scripts/team_stack.sh exec CMD ...      # run CMD in the stack's namespace (Ray sweeps)
#   scripts/team_stack.sh status            # what runs
#   scripts/team_stack.sh stop              # everything down, nothing left running
#
# Why a namespace: started normally, Ray binds and advertises the machine's network
# address, not loopback. Inside a namespace that has only `lo`, every part of the stack
# (and a Ray driver run with `exec`) talks over 127.0.0.1. The MLflow server is also
# forwarded to this machine's 127.0.0.1 (scripts/netns_forward.py), so a browser and
# `rnnlab tracking=server` reach it from outside. Needs root (network namespaces, and
# PostgreSQL runs as the `postgres` user) and Debian's `postgresql` package.
#
# Settings (environment): RNNLAB_TEAM_NAME (namespace, default rnnlab-team),
# RNNLAB_TEAM_DIR (state, logs and the server's artifacts; default outputs/team-stack),
# RNNLAB_TEAM_PORT (the MLflow server's port on this machine, default 5000),
# RNNLAB_TEAM_NODES (Ray nodes, default 2), RNNLAB_TEAM_CPUS (CPUs per node, default 1).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NAME="${RNNLAB_TEAM_NAME:-rnnlab-team}"
DIR="$(mkdir -p "${RNNLAB_TEAM_DIR:-$ROOT/outputs/team-stack}" && cd "${RNNLAB_TEAM_DIR:-$ROOT/outputs/team-stack}" && pwd)"
HOST_PORT="${RNNLAB_TEAM_PORT:-5000}"
NODES="${RNNLAB_TEAM_NODES:-2}"
CPUS="${RNNLAB_TEAM_CPUS:-1}"
PG_PORT=5432 MLFLOW_PORT=5000 RAY_PORT=6379 # inside the namespace: nothing else is there
STATE="$DIR/stack.env"
PY="$ROOT/.venv/bin/python"

say() { echo "team_stack: $*" >&2; }
die() {
  say "error: $*"
  exit 2
}
in_ns() { ip netns exec "$NAME" "$@"; }

# the variables a shell (and `exec`) needs
addresses() {
  echo "export MLFLOW_TRACKING_URI=http://127.0.0.1:$HOST_PORT"
  echo "export RAY_ADDRESS=127.0.0.1:$RAY_PORT"
  echo "export RNNLAB_TEAM_NAME=$NAME"
}

# pids of the sessions we started, one per line in $DIR/sessions
kill_sessions() { # signal
  [ -f "$DIR/sessions" ] || return 0
  local sid pids
  while read -r sid; do
    pids="$(ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s {print $1}')"
    [ -n "$pids" ] && kill "-$1" $pids 2>/dev/null || true
  done <"$DIR/sessions"
}

session_alive() {
  [ -f "$DIR/sessions" ] || return 1
  local sid
  while read -r sid; do
    ps -e -o sid= | grep -qx " *$sid" && return 0
  done <"$DIR/sessions"
  return 1
}

wait_for() { # seconds description command...
  local until=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$until" ] || die "$what did not come up in time (logs in $DIR)"
    sleep 0.5
  done
}

# start a long-running process in its own session, inside the namespace, logged
background() { # name command...
  local name="$1"
  shift
  setsid ip netns exec "$NAME" "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >>"$DIR/sessions" # setsid forks nothing here (we are not a group leader)
  echo $! >"$DIR/$name.sid"  # e.g. ray-node-2.sid: that node's session, to stop it alone
}

start() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces; PostgreSQL runs as postgres)"
  command -v ip >/dev/null || die "needs iproute2's ip"
  [ -x "$PY" ] || (cd "$ROOT" && uv sync --quiet) || die "cannot set up the virtualenv"
  PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$PGBIN" ] || die "needs PostgreSQL: apt-get install postgresql"
  id postgres >/dev/null 2>&1 || die "needs the postgres user (Debian's postgresql package)"
  if [ -f "$STATE" ]; then
    session_alive && {
      say "already running ($STATE)"
      addresses
      return 0
    }
    stop >/dev/null 2>&1 || true
  fi
  ip netns add "$NAME" 2>/dev/null || die "cannot create network namespace $NAME (is it in use? scripts/team_stack.sh stop)"
  in_ns ip link set lo up
  : >"$DIR/sessions"
  PG="$(mktemp -d /tmp/rnnlab-pg-XXXXXX)" # the postgres user must reach it
  RAYTMP="$(mktemp -d /tmp/rnnlab-ray-XXXXXX)" # short: Ray's socket paths are limited
  cat >"$STATE" <<EOF
NAME=$NAME
PG=$PG
PGBIN=$PGBIN
RAYTMP=$RAYTMP
HOST_PORT=$HOST_PORT
EOF
  trap 'say "start failed; stopping what started"; stop >/dev/null 2>&1 || true' ERR

  # PostgreSQL: a fresh cluster, a role and a database for MLflow (trust on loopback of a
  # private namespace; a real deployment sets passwords)
  chown postgres "$PG"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PG/data" -U rnnlab -A trust -E UTF8 \
    --no-sync >"$DIR/postgres-init.log" 2>&1
  in_ns runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG" start >"$DIR/postgres.log" 2>&1
  in_ns "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U rnnlab mlflow

  # MLflow: the tracking server on PostgreSQL, artifacts through it
  mkdir -p "$DIR/artifacts"
  background mlflow-server env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    "$ROOT/.venv/bin/mlflow" server --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 2 \
    --backend-store-uri "postgresql+psycopg://rnnlab@127.0.0.1:$PG_PORT/mlflow" \
    --artifacts-destination "$DIR/artifacts"
  wait_for 120 "the MLflow server" in_ns "$PY" -c \
    "import urllib.request as u; u.urlopen('http://127.0.0.1:$MLFLOW_PORT/health', timeout=2)"

  # Ray: a head and NODES-1 more nodes, joined by address; their workers run the project's
  # virtualenv (no per-session environment) from $DIR (where relative outputs land)
  local ray_env=(env RAY_AUTH_MODE=disabled RAY_ENABLE_UV_RUN_RUNTIME_ENV=0
    RAY_USAGE_STATS_ENABLED=0 PYTHONDONTWRITEBYTECODE=1)
  cd "$DIR"
  background ray-head "${ray_env[@]}" "$ROOT/.venv/bin/ray" start --head --block \
    --port="$RAY_PORT" --num-cpus="$CPUS" --temp-dir="$RAYTMP" --include-dashboard=false \
    --node-ip-address=127.0.0.1
  wait_for 120 "the Ray head" in_ns "${ray_env[@]}" "$ROOT/.venv/bin/ray" status \
    --address="127.0.0.1:$RAY_PORT"
  for i in $(seq 2 "$NODES"); do
    background "ray-node-$i" "${ray_env[@]}" "$ROOT/.venv/bin/ray" start --block \
      --address="127.0.0.1:$RAY_PORT" --num-cpus="$CPUS" --temp-dir="$RAYTMP/node-$i" \
      --node-ip-address=127.0.0.1
  done
  wait_for 120 "$NODES Ray nodes" in_ns "${ray_env[@]}" "$PY" -c "
import ray
ray.init(address='127.0.0.1:$RAY_PORT', logging_level='ERROR', log_to_driver=False)
assert sum(n['Alive'] for n in ray.nodes()) >= $NODES"
  cd "$ROOT"

  # the server on this machine's loopback too
  setsid "$PY" "$ROOT/scripts/netns_forward.py" "$NAME" "$HOST_PORT" "$MLFLOW_PORT" \
    >"$DIR/forward.log" 2>&1 </dev/null &
  echo $! >>"$DIR/sessions"
  wait_for 30 "the forwarded port $HOST_PORT" "$PY" -c \
    "import urllib.request as u; u.urlopen('http://127.0.0.1:$HOST_PORT/health', timeout=2)"
  trap - ERR
  say "up: MLflow server on PostgreSQL, Ray with $NODES nodes (namespace $NAME, state $DIR)"
  addresses
}

stop() {
  local had=0
  if [ -f "$STATE" ]; then
    had=1
    # shellcheck disable=SC1090
    . "$STATE"
    kill_sessions TERM
    if [ -n "${PGBIN:-}" ] && [ -d "${PG:-}/data" ]; then
      in_ns runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w stop \
        >/dev/null 2>&1 || true
    fi
  fi
  # whatever still runs in the namespace is ours
  if ip netns pids "$NAME" >/dev/null 2>&1; then
    had=1
    local pids
    for sig in TERM KILL; do
      pids="$(ip netns pids "$NAME" 2>/dev/null || true)"
      [ -z "$pids" ] && break
      kill "-$sig" $pids 2>/dev/null || true
      for _ in $(seq 20); do
        [ -z "$(ip netns pids "$NAME" 2>/dev/null)" ] && break
        sleep 0.25
      done
    done
    ip netns del "$NAME" 2>/dev/null || true
  fi
  kill_sessions KILL
  for _ in $(seq 40); do # until the last of them is gone (reaped), not just signalled
    session_alive || break
    sleep 0.25
  done
  if [ -f "$STATE" ]; then
    rm -rf "${PG:-/nonexistent}" "${RAYTMP:-/nonexistent}"
    rm -f "$STATE" "$DIR/sessions" "$DIR"/*.sid
  fi
  [ "$had" = 1 ] && say "stopped (namespace $NAME)" || say "nothing was running"
}

status() {
  [ -f "$STATE" ] && session_alive || {
    say "not running"
    return 1
  }
  addresses
  in_ns env RAY_AUTH_MODE=disabled "$ROOT/.venv/bin/ray" status --address="127.0.0.1:$RAY_PORT" \
    2>/dev/null | sed -n '/Node status/,/Pending/p' >&2 || true
}

# run a command inside the namespace, with the stack's addresses set
run_in() {
  [ -f "$STATE" ] || die "not running: scripts/team_stack.sh start"
  [ "$#" -gt 0 ] || die "usage: scripts/team_stack.sh exec CMD ..."
  exec ip netns exec "$NAME" env MLFLOW_TRACKING_URI="http://127.0.0.1:$MLFLOW_PORT" \
    RAY_ADDRESS="127.0.0.1:$RAY_PORT" RAY_AUTH_MODE=disabled "$@"
}

# shellcheck disable=SC1090
[ "${1:-}" != start ] && [ -f "$STATE" ] && . "$STATE" # the running stack's settings
case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
exec)
  shift
  run_in "$@"
  ;;
*)
  echo "usage: scripts/team_stack.sh start|stop|status|exec CMD ..." >&2
  exit 2
  ;;
esac

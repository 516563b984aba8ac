#!/usr/bin/env bash
# make demo: a source and a target redis-server on free loopback ports, test keys in the source,
# rmtd migrating live while a writer keeps writing, then INFO and redis_check. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
RMTD=$PWD/bin/rmtd
WORK=$PWD/demo
rm -rf "$WORK"; mkdir -p "$WORK/src" "$WORK/dst" "$WORK/data"

. scripts/ports.sh # (the working directory is the repository)
free_port SRC; free_port DST; free_port ADMIN

pids=()
cleanup() {
	pid=$(cat "$WORK/rmtd.pid" 2>/dev/null) && kill "$pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

start_redis() { # port dir
	redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --save "" --appendonly no \
		--repl-diskless-sync-delay 0 --logfile "$2/redis.log" &
	pids+=($!)
	for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done
	echo "demo: redis-server on port $1 did not start" >&2; exit 1
}
start_redis "$SRC" "$WORK/src"
start_redis "$DST" "$WORK/dst"

cat >"$WORK/rmt.yaml" <<YAML
source:
  type: single
  servers: [127.0.0.1:$SRC]
target:
  type: single
  servers: [127.0.0.1:$DST]
common:
  listen: 127.0.0.1:$ADMIN
  dir: $WORK/data
YAML

echo "== source 127.0.0.1:$SRC, target 127.0.0.1:$DST, admin 127.0.0.1:$ADMIN"
echo "== rmtd -C \"redis_testinsert all 20000\""
"$RMTD" -c "$WORK/rmt.yaml" -C "redis_testinsert all 20000"

echo "== rmtd -d (log: demo/rmt.log)"
"$RMTD" -c "$WORK/rmt.yaml" -d -o "$WORK/rmt.log" -p "$WORK/rmtd.pid"

# Live writes while the migration runs.
redis-benchmark -p "$SRC" -q -n 50000 -r 10000 -P 16 -t set,incr,lpush,hset,sadd,zadd >/dev/null &
bench=$!

for _ in $(seq 300); do
	redis-cli -p "$ADMIN" info progress 2>/dev/null | grep -q '^phase:oplog' && break
	sleep 0.2
done
wait "$bench"
# Wait for the stream to catch up: every source node's lag is 0.
for _ in $(seq 300); do
	lag=$(redis-cli -p "$ADMIN" info sources 2>/dev/null | tr ',' '\n' | awk -F= '$1=="lag_bytes"{s+=$2} END{print s+0}')
	[ "$lag" = 0 ] && break
	sleep 0.2
done

echo "== redis-cli -p $ADMIN info"
redis-cli -p "$ADMIN" info
echo "== rmtd -C \"redis_check 1000\""
"$RMTD" -c "$WORK/rmt.yaml" -C "redis_check 1000"
echo "== source dbsize $(redis-cli -p "$SRC" dbsize), target dbsize $(redis-cli -p "$DST" dbsize)" \
	"(the target also holds rmtd's checkpoint: $(redis-cli -p "$DST" --scan --pattern 'rmt:checkpoint:*'))"
redis-cli -p "$ADMIN" shutdown >/dev/null 2>&1 || true

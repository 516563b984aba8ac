#!/usr/bin/env bash
# make bench: how long rmtd takes from start to the end of RDB loading, against how long
# redis-server takes to load the same RDB file itself at start-up; their ratio; rmtd's peak RSS.
# Two data sets, each made once by a Lua script and cached in bench-data/ (DATASET picks them):
#   strings      KEYS keys (default 400,000) of every type, mostly strings and small
#                collections, about 112 MB of RDB (the data set of the figures before it had a name);
#   collections  KEYS keys (default 450,000): hashes, lists, sets and zsets of 10 to 500
#                elements, listpack/intset-encoded and hashtable/skiplist-encoded, about 110 MB.
# DATASET=both (the default) runs strings, then collections; each result line names its set.
# RMTD=path measures another rmtd binary (a build from before a change).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${DATASET:-both}
case "$DATASET" in
both)
	DATASET=strings "$0"
	DATASET=collections "$0"
	exit 0
	;;
strings) KEYS=${KEYS:-400000} ;;
collections) KEYS=${KEYS:-450000} ;;
*) echo "bench: DATASET=$DATASET: want strings, collections or both" >&2; exit 2 ;;
esac
RMTD=${RMTD:-$PWD/bin/rmtd}
WORK=${BENCH_DIR:-$PWD/bench-data}
# rmtd serves /metrics as in production, scraped every second during the live step, unless
# BENCH_METRICS=0 (to compare the two).
METRICS=${BENCH_METRICS:-1}
mkdir -p "$WORK"

. scripts/ports.sh # (the working directory is the repository)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

now_ms() { date +%s%3N; }
# redis_log_ms FILE TEXT: the time of the first line of a redis-server log holding TEXT, in Unix
# ms ("7249:S 23 Nov 2026 13:14:25.918 * ..."). Times are taken from logs, not by polling fast:
# every process the bench starts takes CPU from the run it measures.
redis_log_ms() { date -d "$(grep -m1 -F "$2" "$1" | awk '{print $2, $3, $4, $5}')" +%s%3N; }
# cpu_ms PORT [children]: the CPU time (user + system) of a redis-server so far, in ms, from INFO
# cpu; with "children", that of its finished children (the fork writing a snapshot).
cpu_ms() {
	redis-cli -p "$1" info cpu | tr -d '\r' | awk -F: -v c="${2:-}" '
		c == "" && ($1 == "used_cpu_user" || $1 == "used_cpu_sys") { t += $2 }
		c != "" && ($1 == "used_cpu_user_children" || $1 == "used_cpu_sys_children") { t += $2 }
		END { printf "%d", t * 1000 }'
}
# proc_cpu_ms PID: the CPU time (user + system) of a process so far, in ms, from /proc.
proc_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
wait_ready() { # port: PING answers and loading:0
	for _ in $(seq 1200); do
		if redis-cli -p "$1" info persistence 2>/dev/null | grep -q '^loading:0'; then return; fi
		sleep 0.05
	done
	echo "bench: redis on $1 not ready" >&2; exit 1
}
start_redis() { # port dir [args...]
	local port=$1 dir=$2; shift 2
	mkdir -p "$dir"
	redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
		--repl-diskless-sync-delay 0 --logfile "$dir/redis.log" "$@" &
	pids+=($!)
}

# gen_strings prints the Lua script of the strings data set, gen_collections that of the
# collections one; each takes ARGV base and count, and makes keys base to base+count-1.
gen_strings() {
	# Per 10 keys: 4 strings (150-480 B), 2 hashes (10 fields), 1 list (12), 1 set (10),
	# 1 zset (10), 1 stream every other time, a hash every 10,000 keys large (2,000 fields).
	local gen='local base, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local pool = {}
for c = 1, 8192 do pool[c] = string.char(33 + math.random(0, 93)) end
pool = table.concat(pool)
local function rnd(i, len) local o = 1 + (i * 7919) % (8192 - len); return pool:sub(o, o + len - 1) end
for i = base, base + n - 1 do
  local k = "bench:" .. i
  local t = i % 10
  if t < 4 then
    redis.call("SET", k, rnd(i, 150 + (i * 31) % 330))
  elseif t < 6 then
    local a = {}
    for f = 1, 10 do a[#a+1] = "field" .. f; a[#a+1] = rnd(i + f, 24) end
    redis.call("HSET", k, unpack(a))
  elseif t == 6 then
    local a = {}
    for e = 1, 12 do a[#a+1] = rnd(i * 13 + e, 20) end
    redis.call("RPUSH", k, unpack(a))
  elseif t == 7 then
    local a = {}
    for e = 1, 10 do a[#a+1] = rnd(i * 11 + e, 16) end
    redis.call("SADD", k, unpack(a))
  elseif t == 8 then
    local a = {}
    for e = 1, 10 do a[#a+1] = e * 1.5 + i; a[#a+1] = rnd(i * 17 + e, 16) end
    redis.call("ZADD", k, unpack(a))
  else
    if i % 20 == 9 then
      for e = 1, 5 do redis.call("XADD", k, "*", "f", rnd(i + e, 20), "g", i) end
    else
      redis.call("SET", k, i)
    end
  end
  if i % 10000 == 1 then
    local a = {}
    for f = 1, 2000 do a[#a+1] = "f" .. f; a[#a+1] = rnd(i + f, 40) end
    redis.call("HSET", "big:" .. i, unpack(a))
  end
  if i % 7 == 0 then redis.call("PEXPIRE", k, 86400000 + i) end
end
return n'
	printf %s "$gen"
}
# By i % 4: hashes, lists (quicklists), sets (one in four of integers: intsets), zsets; per 100
# of each, 95 of 10-15 elements, 4 of 40-120, 1 of 129-500. Encodings, by Redis's thresholds
# without a config file (128 entries for a zset, 512 for a hash or an intset, 64-byte values):
# zsets over 128 are skiplists, hashes with a 70-100 byte value (the big ones and one in 40)
# hashtables, the rest listpacks or intsets; sets of strings are hashtables (Redis 7.0; 7.2
# makes those up to 128 listpacks).
# Elements of 5-12 bytes (set and zset members a few more); one key in 7 with an expiry.
gen_collections() {
	local gen='local base, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local pool = {}
for c = 1, 8192 do pool[c] = string.char(33 + math.random(0, 93)) end
pool = table.concat(pool)
local function rnd(i, len) local o = 1 + (i * 7919) % (8192 - len); return pool:sub(o, o + len - 1) end
for i = base, base + n - 1 do
  local k = "coll:" .. i
  local t, tier = i % 4, math.floor(i / 4) % 100
  local m
  if tier < 95 then m = 10 + (i * 13) % 6
  elseif tier < 99 then m = 40 + (i * 17) % 81
  else m = 129 + (i * 37) % 372 end
  local a = {}
  if t == 0 then
    for f = 1, m do a[#a+1] = "f" .. f; a[#a+1] = rnd(i * 3 + f, 5 + (i + f) % 8) end
    if i % 160 == 0 or tier == 99 then a[2] = rnd(i, 70 + i % 31) end
    redis.call("HSET", k, unpack(a))
  elseif t == 1 then
    for e = 1, m do a[#a+1] = rnd(i * 13 + e, 5 + (i + e) % 8) end
    redis.call("RPUSH", k, unpack(a))
  elseif t == 2 then
    if i % 16 == 2 then
      for e = 1, m do a[#a+1] = i * 1000 + e end
    else
      for e = 1, m do a[#a+1] = rnd(i * 11 + e, 5 + (i + e) % 8) .. e end
    end
    redis.call("SADD", k, unpack(a))
  else
    for e = 1, m do a[#a+1] = e * 1.5 + i % 1000; a[#a+1] = rnd(i * 17 + e, 5 + (i + e) % 8) .. e end
    redis.call("ZADD", k, unpack(a))
  end
  if i % 7 == 0 then redis.call("PEXPIRE", k, 86400000 + i) end
end
return n'
	printf %s "$gen"
}

if [ "$DATASET" = strings ]; then RDB=$WORK/bench-$KEYS.rdb; else RDB=$WORK/bench-collections-$KEYS.rdb; fi
if [ ! -f "$RDB" ]; then
	echo "== generating $KEYS keys of the $DATASET data set"
	free_port port; rm -rf "$WORK/gen"; start_redis "$port" "$WORK/gen"; wait_ready "$port"
	gen=$("gen_$DATASET")
	for ((b = 0; b < KEYS; b += 20000)); do
		n=$(( KEYS - b < 20000 ? KEYS - b : 20000 ))
		redis-cli -p "$port" eval "$gen" 0 "$b" "$n" >/dev/null
	done
	redis-cli -p "$port" save >/dev/null
	mv "$WORK/gen/dump.rdb" "$RDB"
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
fi
size=$(stat -c %s "$RDB")
echo "== data set $DATASET: $KEYS keys, RDB $((size / 1048576)) MB ($RDB)"
[ -n "${GEN_ONLY:-}" ] && exit 0

# Each timed step starts with sync: the previous step's files (copies of the RDB, rmtd's spool)
# would otherwise be written back to disk during it.
# 1. redis-server loading the file itself.
free_port port; rm -rf "$WORK/load"; mkdir -p "$WORK/load"; cp "$RDB" "$WORK/load/dump.rdb"
sync; t0=$(now_ms); start_redis "$port" "$WORK/load"; wait_ready "$port"
redis_ms=$(($(redis_log_ms "$WORK/load/redis.log" 'DB loaded from disk') - t0))
redis_cpu=$(cpu_ms "$port")
keys_loaded=$(redis-cli -p "$port" dbsize)
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true

# 2. rmtd loading the same file (an "rdb file" source) into an empty redis-server: rmtd's own
#    loading, without the source's snapshot time.
free_port dst2; free_port admin2; free_port metrics2
metrics_key() { [ "$METRICS" = 1 ] && echo ", metrics_listen: 127.0.0.1:$1" || true; }
F=$WORK/rmtd-file
rm -rf "$WORK/dst2" "$F"; mkdir -p "$F"; start_redis "$dst2" "$WORK/dst2"; wait_ready "$dst2"
cat >"$F/rmt.yaml" <<YAML
source: {type: rdb file, servers: [$RDB]}
target: {type: single, servers: [127.0.0.1:$dst2]}
common: {listen: 127.0.0.1:$admin2, dir: $F/data$(metrics_key "$metrics2")}
YAML
# Its peak RSS from GNU time when installed (polling /proc would take CPU from the run).
timer=(); [ -x /usr/bin/time ] && timer=(/usr/bin/time -f %M -o "$F/rss")
dst2_cpu0=$(cpu_ms "$dst2")
sync; t0=$(now_ms)
"${timer[@]}" "$RMTD" -c "$F/rmt.yaml" -o "$F/rmt.log"
t1=$(now_ms)
file_ms=$((t1 - t0))
file_target_cpu=$(($(cpu_ms "$dst2") - dst2_cpu0))
file_rss="n/a (no /usr/bin/time)"; [ -s "$F/rss" ] && file_rss="$(($(tail -1 "$F/rss") / 1024)) MB"
file_keys=$(redis-cli -p "$dst2" dbsize)
redis-cli -p "$dst2" shutdown nosave >/dev/null 2>&1 || true

# 3. rmtd: source holding the data set, empty target, from rmtd's start to the end of RDB loading.
free_port src; free_port dst; free_port admin; free_port metrics
rm -rf "$WORK/src" "$WORK/dst" "$WORK/rmtd" "$WORK/replica"; mkdir -p "$WORK/src" "$WORK/rmtd"
cp "$RDB" "$WORK/src/dump.rdb"
start_redis "$src" "$WORK/src"; start_redis "$dst" "$WORK/dst"
wait_ready "$src"; wait_ready "$dst"
dst_cpu0=$(cpu_ms "$dst"); src_cpu0=$(cpu_ms "$src"); src_child0=$(cpu_ms "$src" children)
cat >"$WORK/rmtd/rmt.yaml" <<YAML
source: {type: single, servers: [127.0.0.1:$src]}
target: {type: single, servers: [127.0.0.1:$dst]}
common: {listen: 127.0.0.1:$admin, dir: $WORK/rmtd/data$(metrics_key "$metrics")}
YAML
sync; t0=$(now_ms)
"$RMTD" -c "$WORK/rmtd/rmt.yaml" -o "$WORK/rmtd/rmt.log" &
rmtd_pid=$!; pids+=($rmtd_pid)
if [ "$METRICS" = 1 ] && command -v curl >/dev/null; then # a Prometheus scraping every second
	(while kill -0 "$rmtd_pid" 2>/dev/null; do curl -s -o /dev/null "http://127.0.0.1:$metrics/metrics" || true; sleep 1; done) &
	pids+=($!)
fi
# Polled ten times a second, with bash builtins where possible; the times come from rmtd's log.
vmhwm() { local k v _; while read -r k v _; do [ "$k" = VmHWM: ] && { echo "$v"; return; }; done <"/proc/$1/status"; echo 0; }
peak=0
while :; do
	rss=$(vmhwm "$rmtd_pid" 2>/dev/null || echo 0)
	[ "${rss:-0}" -gt "$peak" ] && peak=$rss
	if redis-cli -p "$admin" info progress 2>/dev/null | grep -q '^phase:oplog'; then break; fi
	kill -0 "$rmtd_pid" 2>/dev/null || { echo "bench: rmtd exited; see $WORK/rmtd/rmt.log" >&2; exit 1; }
	sleep 0.1
done
peak=$(vmhwm "$rmtd_pid")
# The CPU each process spent until the load was seen done (up to 0.1 s late, idle then): the
# target's, rmtd's, the source's own and its fork's (counted once the fork is reaped).
live_target_cpu=$(($(cpu_ms "$dst") - dst_cpu0)); live_rmtd_cpu=$(proc_cpu_ms "$rmtd_pid")
live_src_cpu=$(($(cpu_ms "$src") - src_cpu0)); live_src_child=$(($(cpu_ms "$src" children) - src_child0))
log_ms() { # the time of rmtd's first log line with this message, in Unix ms
	date -d "$(grep -m1 -F "	$1	" "$WORK/rmtd/rmt.log" | cut -f1)" +%s%3N
}
rmtd_ms=$(($(log_ms "RDB loaded") - t0))
ondisk_ms=$(($(log_ms "snapshot on disk") - t0))
target_keys=$(redis-cli -p "$dst" dbsize)
redis-cli -p "$admin" shutdown asap >/dev/null 2>&1 || true

# A real Redis replica's full sync of the same source (REPLICAOF to link up and loaded): the same
# work rmtd does (the source's snapshot, the transfer, the load), done by Redis itself.
free_port rep; start_redis "$rep" "$WORK/replica"; wait_ready "$rep"
sync; t0=$(now_ms); redis-cli -p "$rep" replicaof 127.0.0.1 "$src" >/dev/null
until redis-cli -p "$rep" info replication persistence | tr -d '\r' | grep -c -E '^(master_link_status:up|loading:0)$' | grep -q 2; do sleep 0.1; done
replica_ms=$(($(redis_log_ms "$WORK/replica/redis.log" 'MASTER <-> REPLICA sync: Finished with success') - t0))
redis-cli -p "$rep" shutdown nosave >/dev/null 2>&1 || true

# 3b. rmtd in source.mode scan (the path for services that refuse PSYNC): the same source, a new
#     empty target; SCAN, DUMP and PEXPIRETIME per key, RESTORE on the target; rmtd exits once
#     the pass is loaded, so its run time is the scan path's full sync.
free_port dst3; free_port admin3
S=$WORK/rmtd-scan
rm -rf "$WORK/dst3" "$S"; mkdir -p "$S"; start_redis "$dst3" "$WORK/dst3"; wait_ready "$dst3"
cat >"$S/rmt.yaml" <<YAML
source: {type: single, servers: [127.0.0.1:$src], mode: scan}
target: {type: single, servers: [127.0.0.1:$dst3]}
common: {listen: 127.0.0.1:$admin3, dir: $S/data}
YAML
timer=(); [ -x /usr/bin/time ] && timer=(/usr/bin/time -f %M -o "$S/rss")
sync; t0=$(now_ms)
"${timer[@]}" "$RMTD" -c "$S/rmt.yaml" -o "$S/rmt.log"
t1=$(now_ms)
scan_ms=$((t1 - t0))
scan_rss="n/a (no /usr/bin/time)"; [ -s "$S/rss" ] && scan_rss="$(($(tail -1 "$S/rss") / 1024)) MB"
scan_keys=$(redis-cli -p "$dst3" dbsize)
redis-cli -p "$dst3" shutdown nosave >/dev/null 2>&1 || true

# The source's snapshot alone: the RDB sent the way it is sent to a replica (diskless, as rmtd
# gets it) to a client that keeps nothing (redis-cli --rdb /dev/null). No replica, whatever
# it does with the bytes, can have them sooner: the floor of the live figure above.
# (It then fails to fsync /dev/null and exits 1: the transfer's own success line is what counts.)
sync; t0=$(now_ms); out=$(redis-cli -p "$src" --rdb /dev/null 2>&1 || true); t1=$(now_ms); snapshot_ms=$((t1 - t0))
grep -q 'Transfer finished with success' <<<"$out" || { echo "bench: redis-cli --rdb failed: $out" >&2; exit 1; }

sec() { awk "BEGIN{printf \"%.3f\", $1/1000}"; }
ratio() { awk "BEGIN{printf \"%.2f\", $1/$2}"; }
{
echo "redis-server loading the file at start-up:              $(sec $redis_ms) s ($keys_loaded keys)"
echo "rmtd loading the same file (rdb file source) into an"
echo "    empty redis-server, start to loaded and exited:     $(sec $file_ms) s ($file_keys keys on the target)"
echo "    ratio to redis-server:                              $(ratio $file_ms $redis_ms)   (goal: at most 2.0)"
echo "rmtd, live source: start to RDB loaded:                 $(sec $rmtd_ms) s ($target_keys keys on the target)"
echo "    ratio to redis-server:                              $(ratio $rmtd_ms $redis_ms)   (the source's snapshot included)"
echo "    the snapshot was whole and fsynced on rmtd's disk:  $(sec "$ondisk_ms") s (rmtd loads while it arrives)"
echo "the source's snapshot alone, to a client keeping"
echo "    nothing (redis-cli --rdb /dev/null):                $(sec $snapshot_ms) s (ratio $(ratio $snapshot_ms $redis_ms): the floor of any live figure)"
echo "a redis-server replica's full sync of the source:       $(sec $replica_ms) s (ratio $(ratio $replica_ms $redis_ms); rmtd/replica $(ratio $rmtd_ms $replica_ms))"
echo "rmtd, source.mode scan (SCAN + DUMP, no PSYNC): start"
echo "    to loaded and exited:                               $(sec $scan_ms) s ($scan_keys keys on the target; PSYNC path $(sec $rmtd_ms) s, scan/psync $(ratio $scan_ms $rmtd_ms))"
echo "rmtd peak RSS: live source $((peak / 1024)) MB, rdb file source $file_rss, scan source $scan_rss"
echo "CPU seconds: redis-server's own load $(sec $redis_cpu); rdb file run: target $(sec $file_target_cpu)"
echo "    live run: target $(sec $live_target_cpu), rmtd $(sec $live_rmtd_cpu), source $(sec $live_src_cpu) + its fork $(sec $live_src_child)"
echo "rmtd's /metrics: $([ "$METRICS" = 1 ] && echo "on (scraped every second in the live run)" || echo "off (BENCH_METRICS=0)")"
} | sed "s/^/[$DATASET] /"

# 4. The RDB decoder alone on the same file, in memory (go test -bench in rdb): framing only
#    (the RESTORE path) and full decoding of every value (the rewrite path), in MB/s.
#    A failure here is reported and does not abort the figures above.
echo "== rdb decoder on $RDB ($((size / 1048576)) MB)"
if out=$(RMT_BENCH_RDB=$RDB go test -run '^$' -bench '^BenchmarkFile(Framing|Decoding)$' -benchtime 3x ./rdb 2>&1); then
	echo "$out" | awk -v set="[$DATASET] " '/^BenchmarkFileFraming/ {printf set "rdb decoder, framing only (RESTORE path):            %s MB/s (%s MB/s per CPU second)\n", $5, $7}
		/^BenchmarkFileDecoding/ {printf set "rdb decoder, full decoding (rewrite path):          %s MB/s (%s MB/s per CPU second)\n", $5, $7}'
else
	echo "bench: rdb decoder benchmark failed:" >&2
	echo "$out" >&2
fi

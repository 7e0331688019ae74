#!/usr/bin/env bash
# Memory and descriptor soak (issue 9): a line at 1000 fps (128x128 Mono8,
# defects) with a lossless archiver (16 MiB segments, retention at 64 MiB,
# so it rotates and deletes all along) and two lossy analyzers writing to
# /dev/null, for FRAMERING_MEMSOAK_SECONDS (default 1800). Every minute each
# process's garbage is collected (GET /debug/pprof/heap?gc=1 on its
# -debug-addr endpoint: so RSS shows what is live, not garbage waiting for
# the GC's 4 MiB minimum heap) and its RSS and open descriptors are read
# from /proc. After a warm-up (FRAMERING_MEMSOAK_WARMUP, default 300 s),
# RSS may grow by at most 1% of itself per 10 minutes (plus one 64 KiB
# page-granularity allowance) and descriptors not at all (medians of the
# first and last three samples), for every process; the archive must verify.
#   scripts/memsoak.sh                       (called by scripts/soak.sh)
#   FRAMERING_MEMSOAK_SECONDS=600 FRAMERING_MEMSOAK_WARMUP=120 scripts/memsoak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FRAMERING_MEMSOAK_SECONDS:-1800}"
warmup="${FRAMERING_MEMSOAK_WARMUP:-300}"
interval=60
(( secs > warmup + 3 * interval )) || { echo "memsoak: FRAMERING_MEMSOAK_SECONDS must exceed the warm-up by 3 minutes"; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bin/" ./cmd/producer ./cmd/analyzer ./cmd/archiver
export FRAMERING_RUNTIME_DIR="$work/run"
mkdir -p "$FRAMERING_RUNTIME_DIR"
ring=memsoak
dbg=(-debug-addr 127.0.0.1:0)

"$work/bin/producer" -ring $ring -source synthetic -width 128 -height 128 -fps 1000 -defects \
  -stats-interval 60s "${dbg[@]}" >"$work/producer.log" 2>&1 &
pids+=($!); names=(producer)
for _ in $(seq 100); do [[ -S "$FRAMERING_RUNTIME_DIR/$ring.sock" ]] && break; sleep 0.1; done
"$work/bin/archiver" run -ring $ring -dir "$work/archive" -segment-size 16MiB -keep-size 64MiB \
  -stats-interval 60s "${dbg[@]}" >"$work/archiver.log" 2>&1 &
pids+=($!); names+=(archiver)
for i in 1 2; do
  "$work/bin/analyzer" -ring $ring -name "analyzer$i" -out /dev/null "${dbg[@]}" >"$work/analyzer$i.log" 2>&1 &
  pids+=($!); names+=("analyzer$i")
done

# The diagnostics port of each process, from its log.
ports=()
for i in "${!pids[@]}"; do
  log="$work/${names[$i]}.log"
  port=""
  for _ in $(seq 100); do
    port=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { echo "memsoak: ${names[$i]} logged no debug endpoint"; cat "$log"; exit 1; }
  ports+=("$port")
done

# gc PORT: force a garbage collection in the process (the heap profile
# endpoint collects first with gc=1), over bash's /dev/tcp.
gc() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET /debug/pprof/heap?gc=1 HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  cat <&3 >/dev/null
  exec 3<&-
}

echo "memsoak: ${names[*]} running for ${secs}s (warm-up ${warmup}s), samples every ${interval}s in $work"
declare -A rss fds
samples=0
start=$SECONDS
while (( SECONDS - start < secs )); do
  sleep $interval
  for i in "${!pids[@]}"; do
    p=${pids[$i]}
    [[ -d /proc/$p ]] || { echo "memsoak: ${names[$i]} exited"; tail -20 "$work/${names[$i]}.log"; exit 1; }
    gc "${ports[$i]}"
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
    f=$(ls "/proc/$p/fd" | wc -l)
    rss[$i,$samples]=$r
    fds[$i,$samples]=$f
  done
  t=$(( SECONDS - start ))
  line="t=${t}s"
  for i in "${!pids[@]}"; do line+="  ${names[$i]} ${rss[$i,$samples]}kB/${fds[$i,$samples]}fd"; done
  echo "$line"
  samples=$(( samples + 1 ))
done

# median3 A B C
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
first=$(( warmup / interval ))        # the first sample after the warm-up
last=$(( samples - 1 ))
minutes=$(( (last - first) * interval / 60 ))
fail=0
for i in "${!pids[@]}"; do
  r0=$(median3 "${rss[$i,$first]}" "${rss[$i,$((first+1))]}" "${rss[$i,$((first+2))]}")
  r1=$(median3 "${rss[$i,$((last-2))]}" "${rss[$i,$((last-1))]}" "${rss[$i,$last]}")
  f0=$(median3 "${fds[$i,$first]}" "${fds[$i,$((first+1))]}" "${fds[$i,$((first+2))]}")
  f1=$(median3 "${fds[$i,$((last-2))]}" "${fds[$i,$((last-1))]}" "${fds[$i,$last]}")
  allowed=$(( r0 * minutes / 1000 + 64 ))   # 1% per 10 minutes, in kB, + 64 kB
  verdict=ok
  if (( r1 - r0 > allowed || f1 != f0 )); then verdict=GROWS; fail=1; fi
  echo "memsoak: ${names[$i]}: RSS ${r0} -> ${r1} kB (allowed +${allowed} over ${minutes} min), fds ${f0} -> ${f1}: $verdict"
done

for p in "${pids[@]}"; do kill -TERM "$p"; done
wait || true
pids=()
"$work/bin/archiver" verify -dir "$work/archive" | tail -3
exit $fail

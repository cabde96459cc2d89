#!/usr/bin/env bash
# `/snapshot` of a large population: time to fetch it, its size, and serve's
# memory while it is written, identity and gzip, in the same run.
#
#   sudo bash benches/snapshot-stream.sh               # 50,000 pairs = 100,000 sockets
#   PAIRS=5000 RUNS=3 sudo bash benches/snapshot-stream.sh
#   BIN=path/to/other/sockscope sudo bash benches/snapshot-stream.sh   # another build
#   INTERVAL=1s sudo bash benches/snapshot-stream.sh                   # samples during the fetches
#
# Needs root (ip netns add). Makes a namespace of its own
# (`sockscope-stream-PID`, lo up) and starts in it holders of
# examples/socket_holder with PAIRS loopback connections (servers of at most
# 15,000 accepted connections, clients of at most 12,500 from 127.0.0.10,
# .11, ...), so that the population collides with no other on the host. Then
# runs `sockscope serve --netns NS --interval INTERVAL` (it samples that
# namespace only; by default every 10 minutes, so that no new sample lands
# during a fetch and the memory measured is the document's), waits until a
# sample holds the population, and fetches `/snapshot` RUNS times each way with
# curl, printing the median:
#   wall s      curl's total time, request to last byte
#   bytes       the body as sent (compressed for gzip)
#   rss MB      serve's resident memory before the fetches (settled)
#   peak MB     serve's peak resident memory during a fetch (VmHWM, reset
#               before each one through /proc/PID/clear_refs); the `idle` row
#               is the same over 5 s without a fetch
# Holders, serve and the namespace are removed when the script exits, however
# it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-50000}
RUNS=${RUNS:-5}
INTERVAL=${INTERVAL:-10m}
PER_CLIENT=12500
PER_SERVER=15000

[ "$(id -u)" -eq 0 ] || { echo "run as root: a namespace is made" >&2; exit 1; }
cargo build --release --locked --quiet --bin sockscope --example socket_holder
bin=${BIN:-$PWD/target/release/sockscope}
holder=$PWD/target/release/examples/socket_holder

work=$(mktemp -d)
pids=()
ns="sockscope-stream-$$"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
. benches/support/holders.sh
ip netns add "$ns"
ip -n "$ns" link set lo up
start() { local name=$1; shift; start_holder "$name" ip netns exec "$ns" "$holder" "$@"; }
mkfifo "$work/hold"
exec 9<>"$work/hold"

start_population 1
total=$(ip netns exec "$ns" ss -tanH | wc -l)

"$bin" serve --listen 127.0.0.1:0 --netns "$ns" --interval "$INTERVAL" 2>"$work/serve.err" &
serve=$!
pids+=("$serve")
addr=
for _ in $(seq 1 300); do
  addr=$(sed -n 's|^sockscope: serving http://\([^/]*\)/.*|\1|p' "$work/serve.err" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "serve did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
# Settled: a sample holds the population (the listeners and both ends).
for _ in $(seq 1 600); do
  n=$(curl -s "http://$addr/healthz" | sed -n 's/.*), \([0-9]*\) sockets.*/\1/p')
  [ -n "$n" ] && [ "$n" -ge "$total" ] && break
  sleep 0.2
done
sleep 2
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$serve/status"; }
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$serve/status"; }
settled=$(rss_kb)
echo "population: $total TCP sockets ($PAIRS loopback pairs in namespace $ns); $(nproc) cores; kernel $(uname -r)"
echo "serve: $bin, settled at $(( settled / 1024 )) MB RSS"

median() { sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"; }
fetch() {
  local name=$1; shift
  : >"$work/runs"
  for _ in $(seq 1 "$RUNS"); do
    echo 5 >"/proc/$serve/clear_refs"
    local t
    t=$(curl -s "$@" -o "$work/body" -w '%{time_total} %{size_download}' "http://$addr/snapshot")
    echo "$t $(hwm_kb)" >>"$work/runs"
  done
  local w b p
  w=$(awk '{print $1}' "$work/runs" | median)
  b=$(awk '{print $2}' "$work/runs" | median)
  p=$(awk '{print $3}' "$work/runs" | median)
  printf '%-10s %8s %12s %8s %8s\n' "$name" "$w" "$b" "$(( settled / 1024 ))" "$(( p / 1024 ))"
}
printf '\n%-10s %8s %12s %8s %8s\n' "/snapshot" "wall s" "bytes" "rss MB" "peak MB"
echo 5 >"/proc/$serve/clear_refs"
sleep 5
printf '%-10s %8s %12s %8s %8s\n' idle - - "$(( settled / 1024 ))" "$(( $(hwm_kb) / 1024 ))"
fetch identity
fetch gzip -H 'Accept-Encoding: gzip'

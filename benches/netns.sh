#!/usr/bin/env bash
# The cost of sampling the whole host when its sockets are spread over many
# network namespaces, against `ss -tan` run in each of them, in the same run.
#
#   sudo bash benches/netns.sh                 # 10,000 pairs over 1, 10, 100 namespaces
#   PAIRS=50000 SPREADS="1 10 100" RUNS=5 sudo bash benches/netns.sh
#   EXTRA=--no-owners SPREADS=100 sudo bash benches/netns.sh
#
# Needs root (ip netns add, entering namespaces). For each spread N: makes N
# namespaces (`ip netns add sockscope-bench-PID-I`, lo up), starts in each a
# holder server and client of examples/socket_holder with PAIRS/N loopback
# connections, then times RUNS times each, median CPU (user+sys) seconds:
#   ss -tan summed        `nsenter --net=/run/netns/NS ss -tan` in each, plus
#                         ss -tan in the host's own namespace
#   sockscope warm sample CPU of one more sample of every namespace in a running
#                         process: (snapshot --samples 11) minus (--samples 1), / 10
#                         (100 ms apart: the shortest interval; sleeping costs no CPU)
#   sockscope cold        one `snapshot --netns all` (enters every namespace)
# Traffic stays on each namespace's loopback. Holders and namespaces are
# removed when the script exits, however it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-10000}
RUNS=${RUNS:-5}
SPREADS=${SPREADS:-"1 10 100"}
# More options for sockscope, e.g. EXTRA=--no-owners to leave the owners out.
read -r -a extra <<<"${EXTRA:-}"

[ "$(id -u)" -eq 0 ] || { echo "run as root: namespaces are made and entered" >&2; exit 1; }
cargo build --release --locked --quiet --bin sockscope --example socket_holder
bin=$PWD/target/release/sockscope
holder=$PWD/target/release/examples/socket_holder

work=$(mktemp -d)
pids=()
spaces=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "${spaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  pids=()
  spaces=()
}
trap 'cleanup; rm -rf "$work"' EXIT INT TERM
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
. benches/support/holders.sh
start() { local ns=$1 name=$2; shift 2; start_holder "$name" ip netns exec "$ns" "$holder" "$@"; }
median_cpu() { time_runs "$@" | cut -d' ' -f2; }



ss_everywhere() {
  ss -tanH
  for n in "${spaces[@]}"; do nsenter --net="/run/netns/$n" ss -tanH; done
}

printf '%-11s %9s %14s %14s %10s %14s\n' namespaces sockets "ss summed cpu" "warm cpu" ratio "cold wall s"
for spread in $SPREADS; do
  rm -f "$work/hold"; mkfifo "$work/hold"; exec 9<>"$work/hold"
  per=$(( PAIRS / spread ))
  [ "$per" -ge 1 ] || per=1
  for i in $(seq 1 "$spread"); do
    ns="sockscope-bench-$$-$i"
    ip netns add "$ns"
    spaces+=("$ns")
    ip -n "$ns" link set lo up
    start "$ns" "s$i" server 1
    port=$(cut -d' ' -f2- "$work/s$i.out" | tr ' ' ',')
    start "$ns" "c$i" client "$port" "$per" 10
  done
  sockets=$(ss_everywhere | wc -l)
  ss_cpu=$(median_cpu ss_everywhere)
  one=$(median_cpu "$bin" snapshot "${extra[@]}" --netns all --samples 1 --interval 100ms)
  ten=$(median_cpu "$bin" snapshot "${extra[@]}" --netns all --samples 11 --interval 100ms)
  warm=$(awk -v a="$ten" -v b="$one" 'BEGIN{printf "%.4f", (a-b)/10}')
  ratio=$(awk -v w="$warm" -v s="$ss_cpu" 'BEGIN{printf "%.2fx", w/s}')
  TIMEFORMAT='%R'
  cold=$( { time "$bin" snapshot "${extra[@]}" --netns all >"$work/cold.out" 2>&1; } 2>&1 )
  printf '%-11s %9s %14s %14s %10s %14s\n' "$spread" "$sockets" "$ss_cpu" "$warm" "$ratio" "$cold"
  exec 9>&-
  cleanup
done
echo "(ss summed: one ss -tan per namespace, nsenter included; warm: one more sample of every namespace in a running sockscope; goal: warm <= 1.0x)"

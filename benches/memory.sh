#!/usr/bin/env bash
# Whole-process memory per socket of `sockscope serve` and of the screen.
#
#   sudo bash benches/memory.sh                 # 50,000 pairs = 100,000+ sockets
#   PAIRS=500000 sudo bash benches/memory.sh    # 1,000,000+ sockets
#   WARM=20 WINDOW=10 sudo bash benches/memory.sh
#
# Needs root (ip netns add). Builds the release binary and examples/socket_holder,
# runs itself in a PID namespace of its own (so that the owner walk sees its
# holders, not other populations of the machine), measures the baseline (below)
# on a fresh empty namespace, then makes a namespace (`sockscope-mem-PID`, lo
# up) and starts in it the
# holders vs-ss.sh uses (servers of at most 15,000 accepted connections, clients
# of at most 12,500 connections each, from 127.0.0.10, .11, ...), so that the
# population collides with nothing in the host's namespace. Then, for `serve`
# and for the screen (in a detached 160x48 tmux), each watching only that
# namespace (`--netns sockscope-mem-PID`), after the warm-up (WARM s): the
# median (settled) and highest (peak) VmRSS over WINDOW s, less the same mode's
# settled RSS on the empty namespace, divided by the sockets: bytes per socket
# (goal: settled <= 600). See benches/support/rss.sh.
# Holders and namespaces are removed when the script exits, however it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-50000}
PER_CLIENT=12500
PER_SERVER=15000

[ "$(id -u)" -eq 0 ] || { echo "run as root: a namespace is made and entered" >&2; exit 1; }
cargo build --release --locked --quiet --bin sockscope --example socket_holder
if [ -z "${SOCKSCOPE_MEM_PIDNS:-}" ]; then
  exec unshare --pid --fork --mount-proc env SOCKSCOPE_MEM_PIDNS=1 bash "$0" "$@"
fi
# BIN= measures another build of sockscope (e.g. an older one, to compare).
bin=${BIN:-$PWD/target/release/sockscope}
holder=$PWD/target/release/examples/socket_holder

work=$(mktemp -d)
pids=()
ns="sockscope-mem-$RANDOM$RANDOM"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rss_cleanup
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkfifo "$work/hold"
exec 9<>"$work/hold"
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
. benches/support/holders.sh
. benches/support/rss.sh

rss_baseline
ip netns add "$ns"
ip -n "$ns" link set lo up
# Room for a million: the namespace's own ephemeral port range.
ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" || true
start() { local name=$1; shift; start_holder "$name" ip netns exec "$ns" "$holder" "$@"; }

start_population 2
sleep 1
total=$(ip netns exec "$ns" ss -tanH | wc -l)
echo "population: $total TCP sockets ($PAIRS loopback pairs in ${#pids[@]} processes, namespace $ns); $(nproc) cores; kernel $(uname -r)"
echo "warm-up ${WARM}s, then VmRSS over ${WINDOW}s; the baseline: the same mode on an empty namespace, before the holders"
echo
rss_report "$ns" "$total"

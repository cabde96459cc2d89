#!/usr/bin/env bash
# The cost of reading the kernel's destroy events under connection churn:
# CPU seconds per second of `sockscope watch` (which samples every second
# and reads the events) with and without `--no-events`, beside `ss -E`
# consuming the same stream, while `examples/churn.rs` opens and closes
# 5,000 and then 20,000 connections a second inside a private network
# namespace. `watch` is given a filter that selects none of the churn, so
# that its output costs nothing: what is measured is the sampling, the
# subscriber and the engine. Needs root (ip netns) and iproute2's ss.
#
#   benches/events.sh            # DUR=10 seconds a measurement
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-10}
RATES=${RATES:-"5000 20000"}
cargo build --release --locked --bin sockscope --example churn >&2
bin=$PWD/target/release/sockscope
churn=$PWD/target/release/examples/churn

work=$(mktemp -d)
ns="sockscope-bench-events-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1

hz=$(getconf CLK_TCK)
# cpu_ticks PID: user + system ticks of the process (all its threads).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure RATE NAME CMD...: runs the churn at RATE and CMD beside it; prints
# "NAME RATE achieved cpu_s_per_s".
measure() {
  local rate=$1 name=$2; shift 2
  ip netns exec "$ns" "$churn" "$rate" $((DUR + 3)) >"$work/churn.out" &
  local churn_pid=$!
  pids+=("$churn_pid")
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  sleep 1.5
  # A consumer that dies (ss -E ends at its first ENOBUFS) is reported so.
  local c0 c1 died=""
  c0=$(cpu_ticks "$pid" 2>/dev/null) || died=yes
  sleep "$DUR"
  c1=$(cpu_ticks "$pid" 2>/dev/null) || died=yes
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  wait "$churn_pid"
  local achieved
  achieved=$(awk '{ print $6 }' "$work/churn.out")
  if [ -n "$died" ]; then
    printf "%-22s %6d/s %10s  died: %s\n" "$name" "$rate" "$achieved" "$(head -c 80 "$work/$name.err")"
    return 0
  fi
  awk -v n="$name" -v r="$rate" -v a="$achieved" -v c0="$c0" -v c1="$c1" -v hz="$hz" -v d="$DUR" \
    'BEGIN { printf "%-22s %6d/s %10s %8.3f\n", n, r, a, (c1 - c0) / hz / d }'
}

printf "%-22s %8s %10s %8s\n" "consumer" "churn" "achieved" "cpu s/s"
for rate in $RATES; do
  measure "$rate" "sockscope" "$bin" watch --netns "$ns" --interval 1s --filter "lport:1"
  measure "$rate" "sockscope --no-events" "$bin" watch --netns "$ns" --interval 1s --filter "lport:1" --no-events
  measure "$rate" "ss -E" ip netns exec "$ns" ss -E -tn
done

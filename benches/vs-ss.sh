#!/usr/bin/env bash
# sockscope against ss, in the same run, on a large loopback population.
#
#   bash benches/vs-ss.sh              # 50,000 pairs = 100,000+ sockets, 5 runs each
#   PAIRS=5000 RUNS=3 bash benches/vs-ss.sh
#   RUN='perf stat target/release/sockscope snapshot' bash benches/vs-ss.sh
#   PAIRS=500000 RUNS=3 SSP_TIMEOUT=300 bash benches/vs-ss.sh    # 1,000,000 sockets
#
# Builds the release binary and examples/socket_holder, starts holder processes
# (servers of at most 15,000 accepted connections, clients of at most 12,500
# connections each, from 127.0.0.10, .11, ...),
# then times, RUNS times each, median wall and CPU (user+sys) seconds:
#   ss -tan                      the socket dump alone, no owners
#   ss -tanp                     with owners: the cost to beat (with SSP_TIMEOUT=S
#                                run once, stopped after S seconds: its time is
#                                then a lower bound, shown as ">", and so are the
#                                ratios to it; at 1M sockets it runs for more than
#                                half an hour)
#   sockscope snapshot           a cold snapshot with owners (new process each run)
#   sockscope snapshot --no-owners
#   sockscope warm sample        CPU of one more sample in a running process:
#                                (snapshot --samples 11) minus (--samples 1), / 10,
#                                100 ms apart (the shortest interval; wall less the waits),
#                                three ways: every sample full (--full-every 1), the
#                                default (--full-every auto: lean samples as the
#                                cost asks, here the 100 ms interval), and one
#                                full in ten (--full-every 10: nine lean samples
#                                and the full one that ends them)
# and, as root, the resident memory per socket of `serve` and of the screen (in
# tmux) watching the host's namespace, less the same on an empty namespace
# (benches/support/rss.sh; benches/memory.sh measures it on a namespace of its own).
# Only 127.0.0.0/8 is used. Holders end when this script exits, however it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-50000}
RUNS=${RUNS:-5}
PER_CLIENT=12500
PER_SERVER=15000

cargo build --release --locked --quiet --bin sockscope --example socket_holder
# BIN= measures another build of sockscope (e.g. an older one, to compare).
bin=${BIN:-target/release/sockscope}
holder=target/release/examples/socket_holder

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rss_cleanup
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Holders read this fifo and exit at EOF, i.e. when this script's end closes fd 9.
mkfifo "$work/hold"
exec 9<>"$work/hold"

ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
. benches/support/holders.sh
. benches/support/rss.sh
start() { local name=$1; shift; start_holder "$name" "$holder" "$@"; }


# The empty process's memory is measured before the population exists: its
# owner walk reads every process's descriptors, the population's too, and
# what that held would stay in the baseline.
[ "$(id -u)" -ne 0 ] || rss_baseline
start_population 2
sleep 1
total=$(ss -tanH | wc -l)
echo "population: $total TCP sockets ($PAIRS loopback pairs in $(( ${#pids[@]} )) processes); $(nproc) cores; kernel $(uname -r)"

# RUN='command' runs that command against the population instead of the table
# (for profiling), then ends the population.
if [ -n "${RUN:-}" ]; then
  bash -c "$RUN"
  exit
fi


printf '\n%-34s %10s %10s\n' "command" "wall s" "cpu s"
row() { printf '%-34s %10s %10s\n' "$1" "$2" "$3"; }

read -r ss_w ss_c < <(time_runs ss -tan)
row "ss -tan" "$ss_w" "$ss_c"
bound=""
if [ -n "${SSP_TIMEOUT:-}" ]; then
  rc=0
  { TIMEFORMAT='%R %U %S'; time timeout "$SSP_TIMEOUT" ss -tanp >"$work/out" 2>"$work/err"; } 2>"$work/t" || rc=$?
  if [ "$rc" = 124 ]; then bound=">"; elif [ "$rc" != 0 ]; then echo "failed: ss -tanp" >&2; cat "$work/err" >&2; exit 1; fi
  read -r ssp_w u s <"$work/t"
  ssp_c=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.4f", u + s}')
else
  read -r ssp_w ssp_c < <(time_runs ss -tanp)
fi
row "ss -tanp" "$bound$ssp_w" "$bound$ssp_c"
read -r our_w our_c < <(time_runs "$bin" snapshot)
row "sockscope snapshot (owners, cold)" "$our_w" "$our_c"
read -r ouno_w ouno_c < <(time_runs "$bin" snapshot --no-owners)
row "sockscope snapshot --no-owners" "$ouno_w" "$ouno_c"
# Ten more samples are ten more 100 ms waits (the shortest interval) besides their work.
warm() {
  local one_w one_c ten_w ten_c
  read -r one_w one_c < <(time_runs "$bin" snapshot --samples 1 --interval 100ms "$@")
  read -r ten_w ten_c < <(time_runs "$bin" snapshot --samples 11 --interval 100ms "$@")
  awk -v a="$ten_w" -v b="$one_w" -v c="$ten_c" -v d="$one_c" \
    'BEGIN{w = (a-b)/10 - 0.1; printf "%.3f %.3f\n", (w < 0 ? 0 : w), (c-d)/10}'
}
read -r full_w full_c < <(warm --full-every 1)
row "sockscope warm sample, full (--full-every 1)" "$full_w" "$full_c"
read -r warm_w warm_c < <(warm)
row "sockscope warm sample (owners; default auto)" "$warm_w" "$warm_c"
read -r ten_w ten_c < <(warm --full-every 10)
row "sockscope warm sample, --full-every 10" "$ten_w" "$ten_c"

echo
awk -v sp="$ssp_w" -v o="$our_w" -v b="$bound" 'BEGIN{printf "cold snapshot with owners: %s%.1fx faster than ss -tanp (goal: >= 10x at 100k, >= 20x at 1M)\n", b, sp/o}'
awk -v s="$ss_c" -v w="$warm_c" -v f="$full_c" -v t="$ten_c" 'BEGIN{printf "warm sample CPU: %.2fx of ss -tan by default (goal: <= 0.5x); every sample full %.2fx; one full in ten %.2fx\n", w/s, f/s, t/s}'

echo
if [ "$(id -u)" -eq 0 ]; then
  rss_report host "$total"
else
  echo "memory per socket: skipped (needs root, for the empty namespace of the baseline)"
fi

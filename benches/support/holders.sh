# Sourced by the bench scripts (vs-ss.sh, netns.sh): starting the socket
# holders and timing commands. The caller sets `work` (a scratch directory
# holding the fifo `hold`), `RUNS`, and the array `pids`.

# start_holder NAME COMMAND...: runs COMMAND (a socket_holder, maybe behind
# `ip netns exec NS`) reading the fifo, and waits (at most 120 s) for its
# `ready` line in $work/NAME.out.
start_holder() {
  local name=$1; shift
  "$@" <"$work/hold" >"$work/$name.out" &
  pids+=($!)
  for _ in $(seq 1 1200); do
    if grep -q '^ready' "$work/$name.out" 2>/dev/null; then return 0; fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then echo "holder $name died" >&2; exit 1; fi
    sleep 0.1
  done
  echo "holder $name not ready in time" >&2
  exit 1
}

# time_runs CMD...: prints "median_wall median_cpu" (seconds, cpu = user+sys)
# of RUNS runs; a run that fails ends the script with its error.
time_runs() {
  local f="$work/t"
  : >"$f"
  for _ in $(seq 1 "$RUNS"); do
    local TIMEFORMAT='%R %U %S'
    { time "$@" >"$work/out" 2>"$work/err"; } 2>>"$f" || { echo "failed: $*" >&2; cat "$work/err" >&2; exit 1; }
  done
  local mid=$(( (RUNS + 1) / 2 ))
  local w c
  w=$(awk '{print $1}' "$f" | sort -g | sed -n "${mid}p")
  c=$(awk '{printf "%.4f\n", $2 + $3}' "$f" | sort -g | sed -n "${mid}p")
  echo "$w $c"
}

# Sourced by the bench scripts (vs-ss.sh, netns.sh): starting the socket
# holders and timing commands. The caller sets `work` (a scratch directory
# holding the fifo `hold`), `RUNS`, and the array `pids`; start_population
# also PAIRS, PER_SERVER, PER_CLIENT and a function `start`.

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

# start_population MIN_SERVERS: the loopback population of PAIRS pairs through
# the caller's `start NAME ARGS...` (which may run holders in a namespace):
# servers of at most PER_SERVER accepted connections (MIN_SERVERS at least,
# the connections spread evenly over all their ports), then clients of at most
# PER_CLIENT connections each, from 127.0.0.10, .11, ... (a process may hold
# about 20,000 descriptors here, a source address 28,232 local ports).
start_population() {
  local min=$1 servers i ports left n src
  servers=$(( (PAIRS + PER_SERVER - 1) / PER_SERVER ))
  [ "$servers" -ge "$min" ] || servers=$min
  for i in $(seq 1 "$servers"); do start "server$i" server 4; done
  ports=$(for i in $(seq 1 "$servers"); do cut -d' ' -f2- "$work/server$i.out"; done | tr ' \n' ',,' | sed 's/,*$//')
  left=$PAIRS
  src=10
  while [ "$left" -gt 0 ]; do
    n=$(( left < PER_CLIENT ? left : PER_CLIENT ))
    start "client$src" client "$ports" "$n" "$src"
    left=$(( left - n ))
    src=$(( src + 1 ))
  done
}

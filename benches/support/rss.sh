# Sourced by the bench scripts (memory.sh, vs-ss.sh): the resident memory of
# `sockscope serve` and of the screen (in tmux) watching a population, less
# that of the same mode watching an empty namespace. The caller sets `work`
# (a scratch directory), `bin` (the sockscope binary) and the array `pids`
# (processes to end on exit), and calls rss_cleanup on exit (it removes the
# empty namespace and the tmux server, which has a socket of its own).
#
# WARM (seconds, default 12) is the warm-up before reading (a few samples at
# the 1 s interval: the first, cold one and some warm ones); then VmRSS is read
# every 0.5 s for WINDOW seconds (default 6): the median of those readings is
# what the process settles at, the highest its peak (a sample being built
# beside the snapshot still held, before the allocator gives the old one back).

WARM=${WARM:-12}
WINDOW=${WINDOW:-6}
rss_empty=""
rss_tmux="sockscope-rss-$RANDOM$RANDOM"
rss_base_serve=""
rss_base_screen=""

rss_cleanup() {
  tmux -L "$rss_tmux" kill-server 2>/dev/null || true
  [ -z "$rss_empty" ] || ip netns del "$rss_empty" 2>/dev/null || true
  rss_empty=""
}

# VmRSS of PID in kB (0 when it is gone).
rss_kb() {
  awk '/^VmRSS:/ {print $2; found=1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0
}

# rss_settled PID: waits WARM seconds, then prints the median and the highest
# VmRSS (kB) over WINDOW seconds; fails when the process ends meanwhile.
rss_settled() {
  local pid=$1 now i
  : >"$work/rss-$pid"
  for _ in $(seq 1 "$WARM"); do
    kill -0 "$pid" 2>/dev/null || { echo "process $pid ended during warm-up" >&2; return 1; }
    sleep 1
  done
  for i in $(seq 1 $(( WINDOW * 2 ))); do
    now=$(rss_kb "$pid")
    [ "$now" -gt 0 ] || { echo "process $pid ended" >&2; return 1; }
    echo "$now" >>"$work/rss-$pid"
    [ "$i" -eq $(( WINDOW * 2 )) ] || sleep 0.5
  done
  sort -n "$work/rss-$pid" | awk '{v[NR]=$1} END{print v[int((NR+1)/2)], v[NR]}'
}

# rss_empty_netns: makes (once) a fresh namespace with nothing in it (lo up),
# named in $rss_empty, for the baseline.
rss_empty_netns() {
  [ -z "$rss_empty" ] || return 0
  rss_empty="sockscope-rss-empty-$RANDOM$RANDOM"
  ip netns add "$rss_empty"
  ip -n "$rss_empty" link set lo up
}

# rss_serve NETNS: the settled VmRSS (kB) of `sockscope serve --netns NETNS`
# (listening on an ephemeral loopback port, owners and events as by default).
rss_serve() {
  local ns=$1 pid kb
  "$bin" serve --listen 127.0.0.1:0 --netns "$ns" >"$work/serve-$ns.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  kb=$(rss_settled "$pid") || { cat "$work/serve-$ns.out" >&2; kill "$pid" 2>/dev/null; return 1; }
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$kb"
}

# rss_screen NETNS: the same for the screen, run in a detached 160x48 tmux.
rss_screen() {
  local ns=$1 session="screen-$RANDOM" pid kb
  tmux -L "$rss_tmux" new-session -d -s "$session" -x 160 -y 48 -c "$PWD" \
    "exec '$bin' --netns '$ns' 2>'$work/screen-$ns.err'"
  pid=$(tmux -L "$rss_tmux" list-panes -t "$session" -F '#{pane_pid}' | head -n1)
  kb=$(rss_settled "$pid") || { cat "$work/screen-$ns.err" >&2; tmux -L "$rss_tmux" kill-session -t "$session"; return 1; }
  tmux -L "$rss_tmux" kill-session -t "$session" 2>/dev/null || true
  echo "$kb"
}

# rss_per_socket KB EMPTY_KB SOCKETS: bytes per socket of the difference.
rss_per_socket() {
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN{ if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "-" }'
}

# rss_baseline: measures serve and the screen on an empty namespace (before
# the population is built, where the script can: then the owner walk of the
# baseline sees no holder either).
rss_baseline() {
  rss_empty_netns
  read -r rss_base_serve _ <<<"$(rss_serve "$rss_empty")"
  read -r rss_base_screen _ <<<"$(rss_screen "$rss_empty")"
}

# rss_report NETNS SOCKETS: measures serve and the screen on NETNS (and the
# baseline, if not done yet) and prints a line for each: settled (median) and
# peak RSS, and bytes per socket of each less the empty process's settled RSS
# (goal: <= 600).
rss_report() {
  local ns=$1 sockets=$2 mode med peak base
  [ -n "$rss_base_serve" ] || rss_baseline
  printf '%-7s %9s %10s %10s %9s %9s %9s\n' mode sockets "settled kB" "peak kB" "empty kB" "B/socket" "peak B/s"
  for mode in serve screen; do
    read -r med peak <<<"$("rss_$mode" "$ns")"
    base=rss_base_$mode
    base=${!base}
    printf '%-7s %9s %10s %10s %9s %9s %9s\n' "$mode" "$sockets" "$med" "$peak" "$base" \
      "$(rss_per_socket "$med" "$base" "$sockets")" "$(rss_per_socket "$peak" "$base" "$sockets")"
  done
}

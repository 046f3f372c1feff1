#!/usr/bin/env bash
# Every benchmark whose figures are in docs/benchmarks.md, one after the other, each against
# BASE (a tree of the baseline commit) where it compares trees. Output: one log per bench in
# OUT, plus the date, commit and machine load at each start, so every figure in the docs can
# name the command and the run it came from.
#
#   bench/run_all.sh BASE_TREE OUT_DIR [bench ...]     # e.g. a `git worktree add` of the base
#
# With no bench names, all run (about 80 minutes on 2 cores, the soak's 30 included). Run it on
# an otherwise idle machine: the figures compare within a run, but a busy box widens spreads.
set -u
BASE=${1:?baseline tree}
OUT=${2:?output folder}
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
mkdir -p "$OUT"
ALL=(lean_publish mqtt_clients ingest hub_cost hub_cost_ab alert_latency_link alert_latency_mrm
     replay replay_log report faults ha_failover console_frames soak commands)
[ $# -gt 0 ] && ALL=("$@")

command_for() {
  case "$1" in
    lean_publish) echo "bench/lean_publish.py" ;;
    mqtt_clients) echo "bench/mqtt_clients.py --seconds 8" ;;
    ingest) echo "bench/ingest.py --seconds 8 --repeats 3 --handovers --baseline $BASE" ;;
    hub_cost) echo "bench/hub_cost.py --rounds 5" ;;
    hub_cost_ab) echo "bench/hub_cost_ab.py --baseline $BASE --repeats 5" ;;
    hub_instructions) echo "bench/hub_instructions.py --baseline $BASE" ;;
    alert_latency_link) echo "bench/alert_latency.py --path link --rounds 3 --baseline $BASE" ;;
    alert_latency_mrm) echo "bench/alert_latency.py --path mrm --rounds 3 --baseline $BASE" ;;
    replay) echo "bench/replay.py --repeats 3 --baseline $BASE" ;;
    replay_log) echo "bench/replay_log.py --vehicles 100 --hours 0.25 --baseline $BASE --repeats 2" ;;
    report) echo "bench/report.py --vehicles 100 --hours 3 --baseline $BASE --repeats 3" ;;
    faults) echo "bench/faults.py" ;;
    ha_failover) echo "bench/ha_failover.py" ;;
    console_frames) echo "bench/console_frames.py --rounds 3" ;;
    soak) echo "bench/soak.py --minutes 30 --warmup-min 4 --sample-s 15" ;;
    commands) echo "bench/commands.py --commands 200 --kills 2 --in-flight 30" ;;
    *) return 1 ;;
  esac
}

cd "$ROOT" || exit 2
status=0
for name in "${ALL[@]}"; do
  cmd=$(command_for "$name") || { echo "unknown bench: $name" >&2; exit 2; }
  log="$OUT/$name.txt"
  {
    echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC')  commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')  base $(git -C "$BASE" rev-parse --short HEAD 2>/dev/null || echo "$BASE")"
    echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "\$ .venv/bin/python $cmd"
  } >"$log"
  echo "== $name: $cmd"
  began=$(date +%s)
  # shellcheck disable=SC2086  # the command's words are meant to split
  timeout 3600 "$PY" $cmd >>"$log" 2>&1
  rc=$?
  echo "# exit $rc after $(( $(date +%s) - began )) s" >>"$log"
  echo "   exit $rc after $(( $(date +%s) - began )) s -> $log"
  [ $rc -eq 0 ] || status=1
done
exit $status

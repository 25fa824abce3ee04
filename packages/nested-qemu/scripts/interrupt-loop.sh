#!/usr/bin/env bash
# Reproduces "Ctrl-C during a nested run's start-up leaves containers behind": starts
# `virtkit conformance run --env nested-qemu` N times, sends one SIGINT at a random moment of its
# first seconds (to the CLI, or to its whole process group as a terminal does), waits for it to
# exit, then lists what carries the nested-qemu label. Prints one line per try and a tally; exits 1
# when any try left something behind. One nested run at a time (it boots real guests).
#
#   bash packages/nested-qemu/scripts/interrupt-loop.sh [tries=10] [runner=vitest|direct] [target=pid|group] [min_ms=1600] [max_ms=2300]
#
# Needs DOCKER_HOST pointing at the engine the run uses, the CLI built, the nested image built.
set -u
tries=${1:-10}
runner=${2:-vitest}
target=${3:-pid}
min_ms=${4:-1600}
max_ms=${5:-2300}
root=$(cd "$(dirname "$0")/../../.." && pwd)
label=virtkit.nested-qemu
logdir=$(mktemp -d /tmp/virtkit-interrupt-loop-XXXXXX)
leftover() {
  { docker ps -aq --filter "label=$label"; docker network ls -q --filter "label=$label"; docker volume ls -q --filter "label=$label"; } | wc -l
}
if [ "$(leftover)" -ne 0 ]; then
  echo "labelled resources exist before the first try; remove them first (docker ps -a --filter label=$label)" >&2
  exit 2
fi
clean=0
for i in $(seq 1 "$tries"); do
  delay_ms=$((min_ms + RANDOM % (max_ms - min_ms + 1)))
  log="$logdir/try-$i.log"
  # setsid: its own process group, so "group" reaches the CLI and its children as a terminal's Ctrl-C does.
  setsid node "$root/packages/cli/bin/run.js" conformance run --driver libvirt --env nested-qemu --runner "$runner" \
    --focus '^admin-password\.set$' --report-json "$logdir/try-$i.json" >"$log" 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  t0=$(date +%s%N)
  if [ "$target" = group ]; then kill -INT -- "-$pid" 2>/dev/null; else kill -INT "$pid" 2>/dev/null; fi
  wait "$pid"
  rc=$?
  secs=$(( ($(date +%s%N) - t0) / 1000000 ))
  # Removal by a process that outlived the CLI would still count as left behind at its exit.
  n=$(leftover)
  report=no; [ -s "$logdir/try-$i.json" ] && report=yes
  if [ "$n" -eq 0 ]; then clean=$((clean + 1)); verdict=clean; else verdict="LEFT $n"; fi
  echo "try $i: SIGINT at ${delay_ms} ms -> exit $rc after ${secs} ms, report-json $report, $verdict"
  if [ "$n" -ne 0 ]; then
    docker ps -a --filter "label=$label" --format '  {{.Names}} {{.Status}}'
    docker network ls --filter "label=$label" --format '  network {{.Name}}'
    # Not the next try's problem: the leftovers go (the label's sweep, as the next run would do).
    docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null
    docker network ls -q --filter "label=$label" | xargs -r docker network rm >/dev/null
    docker volume ls -q --filter "label=$label" | xargs -r docker volume rm >/dev/null
  fi
done
echo "$clean/$tries clean (runner $runner, SIGINT to $target, logs in $logdir)"
[ "$clean" -eq "$tries" ]

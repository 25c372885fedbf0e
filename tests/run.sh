#!/usr/bin/env bash
# `make test`: the whole suite as two pytest sessions side by side, in two phases. Each phase pairs a suite
# that mostly waits on the real Airflow stack (retry delays, heartbeats, an S3 outage) with one that keeps the
# cores busy (ffmpeg), so a 2-core machine is not idle half the time. Still one Airflow stack per session.
#   1. tests/e2e/test_celery.py (it restarts this machine's PostgreSQL and Redis) beside what needs neither:
#      tests/unit (pure) and the media and player tests (ffmpeg, Chromium), less the two web tests that use
#      Postgres (they run in phase 2);
#   2. the rest of tests/e2e beside the rest of tests/integration (Postgres, S3 over HTTP), and beside both the
#      early-playback e2e tests (a browser playing in real time: mostly waiting) in a session of their own, with
#      its own embedded stack, so their minutes of playback overlap the others instead of adding to them.
# The foreground session prints as it runs; the others' output follows it. Any failure fails the run.
set -uo pipefail
set -m  # the session run alongside gets its own process group, so an interrupt reaches it (and its fixtures)
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}
mkdir -p artifacts

alongside=()
stop_alongside() {
  for pid in "${alongside[@]}"; do kill -INT -- "-$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap 'stop_alongside; exit 130' INT TERM

pair() {  # pair NAME "FOREGROUND ARGS" "ALONGSIDE ARGS" ["ALONGSIDE ARGS" ...]
  local name=$1 front_args=$2 front=0 side=0 i=0 args
  shift 2
  alongside=()
  for args in "$@"; do
    i=$((i + 1))
    # shellcheck disable=SC2086 # the arguments are word lists
    $PYTEST -p no:cacheprovider $args >"artifacts/pytest-$name-$i.log" 2>&1 &
    alongside+=("$!")
  done
  # shellcheck disable=SC2086
  $PYTEST $front_args || front=$?
  if [ "$front" = 2 ]; then stop_alongside; fi  # interrupted: stop the other sessions too
  i=0
  for args in "$@"; do
    local code=0
    wait "${alongside[$i]}" || code=$?
    i=$((i + 1))
    echo "======== alongside: pytest $args (exit $code) ========"
    cat "artifacts/pytest-$name-$i.log"
    side=$(( side || code ))
  done
  alongside=()
  return $(( front || side ))
}

status=0
# The web tests that use the catalog's Postgres run in phase 2: test_celery.py restarts PostgreSQL.
ON_PG="tests/integration/web/test_ratelimits.py tests/integration/web/test_early_media.py"
pair media "tests/e2e/test_celery.py" "tests/unit tests/integration/media tests/integration/web \
  --ignore=tests/integration/web/test_ratelimits.py --ignore=tests/integration/web/test_early_media.py" || status=1
EARLY="tests/e2e/test_early_playback.py tests/e2e/test_early_chunks.py"
pair integration "tests/e2e --ignore=tests/e2e/test_celery.py --ignore=tests/e2e/test_early_playback.py \
  --ignore=tests/e2e/test_early_chunks.py" \
  "tests/integration --ignore=tests/integration/media --ignore=tests/integration/web" "$EARLY $ON_PG" || status=1
exit $status

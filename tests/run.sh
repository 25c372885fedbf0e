#!/usr/bin/env bash
# `make test`: the whole suite as two pytest sessions side by side, in two phases. Each phase pairs a suite
# that mostly waits on the real Airflow stack (retry delays, heartbeats, an S3 outage) with one that keeps the
# cores busy (ffmpeg), so a 2-core machine is not idle half the time. Still one Airflow stack per session.
#   1. tests/e2e/test_celery.py (it restarts this machine's PostgreSQL and Redis) beside what needs neither:
#      tests/unit (pure) and the media and player tests (ffmpeg, Chromium);
#   2. the rest of tests/e2e beside the rest of tests/integration (Postgres, S3 over HTTP).
# The foreground session prints as it runs; the other one's output follows it. Any failure fails the run.
set -uo pipefail
set -m  # the session run alongside gets its own process group, so an interrupt reaches it (and its fixtures)
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}
mkdir -p artifacts

alongside=""
stop_alongside() { [ -n "$alongside" ] && kill -INT -- "-$alongside" 2>/dev/null; wait 2>/dev/null; }
trap 'stop_alongside; exit 130' INT TERM

pair() {  # pair NAME "FOREGROUND ARGS" "ALONGSIDE ARGS"
  local log="artifacts/pytest-$1.log" front=0 side=0
  # shellcheck disable=SC2086 # the arguments are word lists
  $PYTEST -p no:cacheprovider $3 >"$log" 2>&1 &
  alongside=$!
  # shellcheck disable=SC2086
  $PYTEST $2 || front=$?
  if [ "$front" = 2 ]; then stop_alongside; fi  # interrupted: stop the other session too
  wait "$alongside" || side=$?
  alongside=""
  echo "======== alongside: pytest $3 (exit $side) ========"
  cat "$log"
  return $(( front || side ))
}

status=0
pair media "tests/e2e/test_celery.py" "tests/unit tests/integration/media tests/integration/web" || status=1
pair integration "tests/e2e --ignore=tests/e2e/test_celery.py" \
  "tests/integration --ignore=tests/integration/media --ignore=tests/integration/web" || status=1
exit $status

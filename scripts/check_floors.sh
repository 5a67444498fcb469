#!/usr/bin/env bash
# Install etsim with its dependencies pinned to a constraints file in a throw-away
# virtualenv, then run the test suite there (without the browser tests).
#
#   scripts/check_floors.sh                               # constraints/minimum.txt
#   scripts/check_floors.sh constraints/current.txt       # any constraints file
#   scripts/check_floors.sh constraints/minimum.txt -x -k scenario   # extra pytest args
#   VENV=/tmp/venv-floor PYTHON=python3.11 scripts/check_floors.sh
#
# Run it from anywhere; it installs this checkout (editable) into $VENV (default
# /tmp/venv-floor, deleted and made afresh each time), never into the Python it starts
# from. It needs PyPI (pip) and takes a few minutes: the install, then about 3 minutes of
# tests on 2 cores. It fails if the install, `pip check`, `ruff check .` (the lint of
# `make test`) or a test fails.
set -euo pipefail
CONSTRAINTS="$(realpath "${1:-$(dirname "$0")/../constraints/minimum.txt}")"
shift || true
cd "$(dirname "$0")/.."
VENV="${VENV:-/tmp/venv-floor}"
PYTHON="${PYTHON:-python}"

echo "== constraints: $CONSTRAINTS; venv: $VENV; python: $("$PYTHON" --version)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]" \
    -c "$CONSTRAINTS"
echo "== installed (direct dependencies):"
"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
    | grep -i -E '^(mesa|numpy|numba|llvmlite|networkx|pandas|pyarrow|pydantic|plotly|dash|dask|distributed|salib|tqdm|pytest|pytest-xdist|hypothesis|ruff|playwright) '
echo "== pip check:"
"$VENV/bin/python" -m pip check --disable-pip-version-check
echo "== ruff (the floor's ruff on this checkout):"
lint=0
"$VENV/bin/python" -m ruff check . || lint=$?
echo "== tests (browser tests excluded):"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -n 2 tests \
    --ignore=tests/test_dashboard_e2e.py "$@"
if [ "$lint" -ne 0 ]; then
    echo "== the tests passed but ruff check failed (status $lint)" >&2
    exit "$lint"
fi

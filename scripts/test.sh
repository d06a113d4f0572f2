#!/usr/bin/env bash
# Install everything into .venv, make sure PostgreSQL is up, run the whole test suite.
# Each run creates (and drops) its own PostgreSQL database, so runs never meet.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
bash scripts/ensure-postgres.sh
exec .venv/bin/python -m pytest -n 2 "$@"

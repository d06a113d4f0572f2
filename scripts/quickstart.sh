#!/usr/bin/env bash
# The main job on the embedded SQLite default: install, provision tenants, list them.
# Works in a fresh temporary directory unless DOCEX_QUICKSTART_DIR names one.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$repo/.venv/bin/python" ] || python3 -m venv "$repo/.venv"
"$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo"
work=${DOCEX_QUICKSTART_DIR:-$(mktemp -d -t docex-ops-quickstart.XXXXXX)}
mkdir -p "$work" && cd "$work"
export PATH="$repo/.venv/bin:$PATH"
unset DOCEX_CONFIG DOCEX_DATABASE_URL

step() { printf '\n$ %s\n' "$*"; "$@"; }

step docex-ops tenants provision acme globex initech --verify
step docex-ops tenants list
step docex-ops tenants show acme
printf '\nTenant files are under %s/storage\n' "$work"

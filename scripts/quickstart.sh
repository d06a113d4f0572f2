#!/usr/bin/env bash
# The main job on the embedded SQLite default, end to end: provision tenants, add
# documents, migrate, back up and verify, audit isolation, report connections.
# Works in a fresh temporary directory unless DOCEX_QUICKSTART_DIR names one.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$repo/.venv/bin/python" ] || python3 -m venv "$repo/.venv"
# Install (editable) unless this exact pyproject.toml was installed already.
stamp="$repo/.venv/.docex-ops-installed"
if ! cmp -s "$repo/pyproject.toml" "$stamp" 2>/dev/null; then
  "$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo"
  cp "$repo/pyproject.toml" "$stamp"
fi
work=${DOCEX_QUICKSTART_DIR:-$(mktemp -d -t docex-ops-quickstart.XXXXXX)}
mkdir -p "$work" && cd "$work"
export PATH="$repo/.venv/bin:$PATH"
unset DOCEX_CONFIG DOCEX_DATABASE_URL
started=$(date +%s)

step() { printf '\n$ %s\n' "$*"; "$@"; }

step docex-ops tenants provision acme globex initech --verify
step python "$repo/examples/add_documents.py" acme globex initech
printf '\n# initech is put back to the DocEX 2.9.9 layout, as an older DocEX would have left it\n'
step docex-ops -q migrate downgrade 0002_docex_2_9_9 --tenant initech --force
step docex-ops migrate status
step docex-ops migrate upgrade
step docex-ops migrate status --check
step docex-ops backup create --all --dest "$work/backups"
step docex-ops backup verify "$work/backups" --restore-check
step docex-ops verify-isolation
if docex-ops pools --help >/dev/null 2>&1; then
  step docex-ops pools report
fi
step docex-ops tenants list

cat <<TXT

Done in $(( $(date +%s) - started ))s. Everything is under $work:
  storage/tenant_<id>/docex.db   one SQLite file per tenant (and files/ for documents)
  storage/_docex_ops.db          docex-ops' own records (migration runs)
  backups/                       one archive + manifest per tenant
Try: cd $work && $repo/.venv/bin/docex-ops tenants show acme
TXT

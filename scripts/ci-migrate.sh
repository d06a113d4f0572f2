#!/usr/bin/env bash
# The deploy-time migration step for a CI pipeline. Exit code: 0 every tenant is at
# head; 1 a tenant failed (the rest follow the failure policy); 2 usage/config error.
#
# Environment (all optional):
#   DOCEX_CONFIG   the DocEX config file (or ~/.docex/config.yaml)
#   CANARY=5       tenants migrated first; any failure among them stops the run
#   MAX_FAILURES=1 stop starting new tenants after this many failures
#   JOBS=4         tenants migrated at once
#   BACKUP_DIR     if set, back up the tenants about to change there first
#   REPORT=migrate-report.json   the JSON result for the pipeline's artifacts
#   DOCEX_OPS=docex-ops          the command; SCRIPTS_DIR an Alembic script directory
#   ALLOW="rename drop"          lint rules waived for this deploy (each --allow RULE);
#                                an error-level lint finding otherwise fails the pipeline
set -euo pipefail
ops=${DOCEX_OPS:-docex-ops}
report=${REPORT:-migrate-report.json}
scripts=()
[ -n "${SCRIPTS_DIR:-}" ] && scripts=(--scripts "$SCRIPTS_DIR")

run() { printf '+ %s\n' "$*" >&2; "$@"; }

allow=()
for rule in ${ALLOW:-}; do allow+=(--allow "$rule"); done

run "$ops" migrate "${scripts[@]}" status
# Before any backup or tenant: a dangerous revision fails the pipeline here.
run "$ops" migrate "${scripts[@]}" lint "${allow[@]}"

if [ -n "${BACKUP_DIR:-}" ]; then
  plan=$("$ops" --format json -q migrate "${scripts[@]}" upgrade --dry-run)
  mapfile -t behind < <(printf '%s' "$plan" | python3 -c \
    'import json, sys; [print(s["tenant"]) for s in json.load(sys.stdin)["data"]["steps"]]')
  if [ "${#behind[@]}" -gt 0 ]; then
    args=()
    for tenant in "${behind[@]}"; do args+=(--tenant "$tenant"); done
    run "$ops" backup create "${args[@]}" --dest "$BACKUP_DIR/$(date -u +%Y%m%dT%H%M%SZ)" \
      --jobs "${JOBS:-4}"
  fi
fi

run "$ops" migrate "${scripts[@]}" upgrade "${allow[@]}" --canary "${CANARY:-5}" \
  --max-failures "${MAX_FAILURES:-1}" --jobs "${JOBS:-4}" --report "$report"
run "$ops" migrate "${scripts[@]}" status --check

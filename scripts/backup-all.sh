#!/usr/bin/env bash
# Nightly runbook: back up every tenant into a dated folder, verify it, prune old copies.
#
#   BACKUP_ROOT=/var/backups/docex KEEP=7 JOBS=2 scripts/backup-all.sh [--config FILE]
#
# Extra arguments go to docex-ops (e.g. --config). Every copy is checked against its
# manifest (sha256); set RESTORE_CHECK=1 to also restore each one into a scratch schema or
# file and compare every table's checksum. Prune keeps the KEEP newest good copies per
# tenant across all dated folders and never removes a tenant's only good copy.
# Exits non-zero if any step fails; a failed tenant never stops the others being backed up.
set -uo pipefail
root=${BACKUP_ROOT:?set BACKUP_ROOT to the folder that holds the dated backup folders}
keep=${KEEP:-7}
jobs=${JOBS:-2}
ops=${DOCEX_OPS:-docex-ops}
dest="$root/$(date -u +%Y-%m-%d)"
status=0

run() { echo "+ $ops $*" >&2; "$ops" "$@" || status=1; }

mkdir -p "$dest"
run "$@" backup create --all --dest "$dest" --jobs "$jobs"
if [ "${RESTORE_CHECK:-0}" = 1 ]; then
  run "$@" backup verify "$dest" --restore-check
else
  run "$@" backup verify "$dest"
fi
if [ "$status" = 0 ]; then
  run "$@" backup prune "$root" --keep "$keep"
else
  echo "backup or verify failed: not pruning $root" >&2
fi
exit "$status"

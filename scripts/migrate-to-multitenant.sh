#!/usr/bin/env bash
# Runbook: DocEX guide, "Migration from single-tenant" - a single-tenant DocEX database
# split into database-level tenants, verified, and the new configuration written.
#
#   SOURCE=postgresql://docex@db/docex MAPPING=baskets.yaml CONFIG=config.yaml \
#     BACKUP_DIR=/var/backups/docex scripts/migrate-to-multitenant.sh [split flags...]
#
# SOURCE   the single-tenant database: a postgresql:// URL (SOURCE_SCHEMA, default public)
#          or a SQLite file / sqlite:/// URL. It is only read.
# MAPPING  YAML or CSV: basket id or name -> tenant id (see `docex-ops split plan --help`).
# CONFIG   the DocEX config; the tenants go to its database. The new configuration is
#          written to NEW_CONFIG (default: CONFIG with .multitenant before the suffix).
# JOBS     tenants filled at once (default 2). Extra arguments go to `split plan/run/verify`
#          (e.g. --unmapped skip --cross-tenant-edges drop).
# Steps: 1 back up the source (pg_dump -n SCHEMA -Fc / sqlite3 .backup), 2 plan (stops on
# any unresolved problem), 3 run (--upgrade: tenants end at head), 4 verify, 5 write the
# new config and print the diff, 6 `docex-ops verify-isolation` when that command exists.
# Stops at the first failing step with its exit code (1 failure, 2 usage).
set -euo pipefail
source_db=${SOURCE:?set SOURCE to the single-tenant database URL or SQLite file}
mapping=${MAPPING:?set MAPPING to the basket -> tenant mapping file}
config=${CONFIG:?set CONFIG to the DocEX config file of the tenants}
backup_dir=${BACKUP_DIR:?set BACKUP_DIR to the folder for the source backup}
schema=${SOURCE_SCHEMA:-public}
jobs=${JOBS:-2}
ops=${DOCEX_OPS:-docex-ops}
new_config=${NEW_CONFIG:-${config%.*}.multitenant.${config##*.}}
stamp=$(date -u +%Y%m%dT%H%M%SZ)

step() { echo "== $*" >&2; }
run() { echo "+ $*" >&2; "$@"; }

split_args=(--source "$source_db" --source-schema "$schema" --mapping "$mapping" "$@")

step "1/6 back up the source"
mkdir -p "$backup_dir"
case "$source_db" in
  postgres://*|postgresql://*|postgresql+*://*)
    pg_url=${source_db/postgresql+psycopg2:/postgresql:}
    run pg_dump --format=custom --schema="$schema" --file="$backup_dir/source-$stamp.pgdump" \
      "$pg_url" ;;
  *)
    file=${source_db#sqlite:///}
    run sqlite3 "file:$file?mode=ro" ".backup '$backup_dir/source-$stamp.sqlite'" ;;
esac

step "2/6 plan"
run "$ops" --config "$config" split plan "${split_args[@]}"

step "3/6 run"
run "$ops" --config "$config" split run "${split_args[@]}" --jobs "$jobs" --upgrade

step "4/6 verify"
run "$ops" --config "$config" split verify "${split_args[@]}"

step "5/6 new configuration: $new_config"
"${PYTHON:-python3}" - "$config" "$new_config" <<'PY'
import sys
import yaml
with open(sys.argv[1]) as handle:
    data = yaml.safe_load(handle) or {}
security = data.setdefault("security", {})
security["multi_tenancy_model"] = "database_level"
security["tenant_database_routing"] = True
with open(sys.argv[2], "w") as handle:
    yaml.safe_dump(data, handle, sort_keys=False)
PY
diff -u "$config" "$new_config" || true

step "6/6 isolation check"
if "$ops" verify-isolation --help >/dev/null 2>&1; then
  run "$ops" --config "$new_config" verify-isolation
else
  echo "docex-ops verify-isolation is not available in this version: skipped" >&2
fi
echo "done: point DocEX at $new_config" >&2

#!/usr/bin/env bash
# Make sure PgBouncer is installed (Debian's package), for the tests that start their own
# PgBouncer in front of the local PostgreSQL. A no-op when `pgbouncer` is on PATH.
set -euo pipefail
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  exit 0
fi
echo "ensure-pgbouncer: installing pgbouncer from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q pgbouncer >/dev/null
# The package starts a system instance on 6432; the tests run their own.
(service pgbouncer stop || pkill -x pgbouncer || true) >/dev/null 2>&1

#!/usr/bin/env bash
# Make sure the local PostgreSQL (127.0.0.1:5432, trust auth on these machines) is up.
set -euo pipefail
host=${DOCEX_TEST_PGHOST:-127.0.0.1}
port=${DOCEX_TEST_PGPORT:-5432}
if pg_isready -q -h "$host" -p "$port"; then
  exit 0
fi
echo "PostgreSQL is not answering on $host:$port; starting it" >&2
pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
for _ in $(seq 1 30); do
  pg_isready -q -h "$host" -p "$port" && exit 0
  sleep 1
done
echo "PostgreSQL did not come up on $host:$port" >&2
exit 1

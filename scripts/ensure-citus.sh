#!/usr/bin/env bash
# Make sure the Citus extension (13.0.x, for the local PostgreSQL 15) is installed, so
# that the Citus tests can start a coordinator and two workers of their own.
# A no-op when citus.so is already in `pg_config --pkglibdir`. Otherwise it builds the
# source in ../shared/citus/ (Citus is not in Debian's archive) after installing the
# build packages with apt-get. Without the source and without Citus it says so and
# exits 0: the Citus tests then skip with one line that says why.
set -euo pipefail
cd "$(dirname "$0")/.."
TARBALL=${DOCEX_CITUS_TARBALL:-../shared/citus/citus-13.0.5.tar.xz}
SHA256=20febe90c7d919eaf5867bf26e8b0f83273570f4d4e75a95014bd644fa7fe6cc
PG_CONFIG=${PG_CONFIG:-$(ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1)}
[ -n "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config || true)
if [ -z "$PG_CONFIG" ]; then
  echo "ensure-citus: no pg_config found; the Citus tests will be skipped" >&2
  exit 0
fi
if [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
  exit 0
fi
if [ ! -f "$TARBALL" ]; then
  echo "ensure-citus: Citus is not installed and $TARBALL is missing; the Citus tests will be skipped" >&2
  exit 0
fi
echo "$SHA256  $TARBALL" | sha256sum -c --quiet - || {
  echo "ensure-citus: $TARBALL does not match its sha256; refusing to build it" >&2
  exit 1
}
echo "ensure-citus: building Citus from $TARBALL (about 1.5 minutes)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q postgresql-server-dev-15 liblz4-dev libzstd-dev libssl-dev \
  libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev >/dev/null
BUILD_DIR=$(mktemp -d /tmp/docex-citus-build.XXXXXX)
trap 'rm -rf "$BUILD_DIR"' EXIT
tar -xJf "$TARBALL" -C "$BUILD_DIR"
cd "$BUILD_DIR"/citus-*
./configure -q --without-libcurl PG_CONFIG="$PG_CONFIG" >/dev/null
make -s -j2 >/dev/null
make -s install >/dev/null
echo "ensure-citus: installed $("$PG_CONFIG" --pkglibdir)/citus.so" >&2

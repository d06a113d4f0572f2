#!/usr/bin/env bash
# Make sure Chromium is installed (Debian's package), for tests/test_report_html.py, which
# opens `docex-ops report --html`'s page in headless Chromium. A no-op when
# /usr/bin/chromium is there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "ensure-chromium: installing chromium from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
# Without recommends (no desktop extras), but with one font: a screenshot needs glyphs.
# A fresh image may have no package lists yet: update once and try again.
PACKAGES="chromium fonts-dejavu-core"
apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null
}

#!/usr/bin/env bash
# Install what the console's browser tests need from Debian's packages, where it is missing:
# chromium (driven by Playwright through its executable path: no browser is downloaded) and a
# CJK font (fonts-noto-cjk) so the Chinese pages and plots render as glyphs, not boxes.
#
# Never fails `make setup`: where it cannot install them it says why on one line, and the
# browser tests skip with that reason.
set -uo pipefail

PACKAGES=(chromium fonts-noto-cjk)

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -d /usr/share/fonts/opentype/noto ]] || fc-list 2>/dev/null | grep -qi "Noto Sans CJK" \
  || missing+=(fonts-noto-cjk)
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null; then
  echo "browser_setup: ${missing[*]} missing and no apt-get here; the browser tests will skip" >&2
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "browser_setup: ${missing[*]} missing; run as root to install ${PACKAGES[*]}" >&2
  exit 0
fi
echo "browser_setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/browser_setup.log 2>&1; then
  apt-get update -q >>/tmp/browser_setup.log 2>&1 || true
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/browser_setup.log 2>&1 \
    || echo "browser_setup: apt-get install failed: $(tail -1 /tmp/browser_setup.log)" >&2
fi
exit 0

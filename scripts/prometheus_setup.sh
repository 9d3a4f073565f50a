#!/usr/bin/env bash
# Install Debian's `prometheus` package (the server and promtool) where it is missing: the
# observability tests start a real Prometheus and check the alert rules with promtool.
# Only the binaries are used; the package's own service is never started by us.
#
# Exit 2, with the reason on one line, when it cannot install them.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "prometheus_setup: prometheus is missing and this machine has no apt-get" >&2
  exit 2
fi
if [[ $(id -u) != 0 ]]; then
  echo "prometheus_setup: prometheus is missing; run as root to install Debian's prometheus" >&2
  exit 2
fi
LOG=$(mktemp /tmp/prometheus_setup.XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d: the package must not start its own server (and so hold port 9090).
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 755 "$POLICY" && created_policy=1
fi
trap '[[ $created_policy == 1 ]] && rm -f "$POLICY"' EXIT
if ! apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends prometheus >"$LOG" 2>&1; then
  apt-get update -q -o DPkg::Lock::Timeout=300 >>"$LOG" 2>&1 || true
  apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends prometheus >>"$LOG" 2>&1 || {
    echo "prometheus_setup: apt-get install failed: $(tail -1 "$LOG")" >&2
    exit 2
  }
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null || {
  echo "prometheus_setup: installed, but prometheus or promtool is not on PATH" >&2
  exit 2
}

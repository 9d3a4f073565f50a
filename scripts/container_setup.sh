#!/usr/bin/env bash
# Install what `make test-containers` needs from Debian's packages, where it is missing:
# podman with the runc runtime (crun, podman's default where installed, refuses the cgroup
# set-up of some sandboxed machines), netavark and aardvark-dns (a container network with
# DNS by service name), iptables (netavark sets up NAT and published ports with it, and
# without it fails every build and run with a bare "No such file or directory"),
# fuse-overlayfs and uidmap (storage and user namespaces for podman as a non-root user),
# catatonit, and mmdebstrap and debootstrap (scripts/container_base.sh
# makes base images from Debian where no registry answers).
#
# Exit 2, with the reason on one line, when it cannot install them.
set -euo pipefail

PACKAGES=(podman runc netavark aardvark-dns iptables fuse-overlayfs uidmap catatonit mmdebstrap debootstrap)
COMMANDS=(podman runc iptables mmdebstrap debootstrap /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns)

missing() {
  local c
  for c in "${COMMANDS[@]}"; do
    command -v "$c" >/dev/null 2>&1 || [[ -x $c ]] || { echo "$c"; return 0; }
  done
  return 1
}

if ! gone=$(missing); then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "container_setup: $gone is missing and this machine has no apt-get; install podman and runc" >&2
  exit 2
fi
if [[ $(id -u) != 0 ]]; then
  echo "container_setup: $gone is missing; run as root to install ${PACKAGES[*]}" >&2
  exit 2
fi
echo "container_setup: installing ${PACKAGES[*]} (missing: $gone)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >/tmp/container_setup.log 2>&1; then
  apt-get update -q >>/tmp/container_setup.log 2>&1 || true
  apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>/tmp/container_setup.log 2>&1 || {
    echo "container_setup: apt-get install failed: $(tail -1 /tmp/container_setup.log)" >&2
    exit 2
  }
fi
if gone=$(missing); then
  echo "container_setup: still missing after install: $gone" >&2
  exit 2
fi
echo "container_setup: $(podman --version), $(runc --version | head -1)"

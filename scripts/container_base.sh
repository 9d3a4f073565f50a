#!/usr/bin/env bash
# Make sure the base images the deployment needs are in podman's local store.
#
#   scripts/container_base.sh            python:3.11-slim and postgres:15
#
# Each is pulled when a registry answers. Where none does (a closed network), a stand-in is
# made here, under the same name, from Debian bookworm (whose python3 is 3.11, as the real
# image's is):
#
#   python:3.11-slim   a minbase bootstrap of bookworm (mmdebstrap, or debootstrap where
#                      mmdebstrap is missing) with python3 and venv, `python` on PATH as in
#                      the real image (scripts/container/customize-rootfs.sh), imported
#                      with `podman import`;
#   postgres:15        that base plus Debian's postgresql-15 and an entry point that honours
#                      POSTGRES_USER / _PASSWORD / _DB as the real image does.
#
# The Debian mirror is the one apt on this machine is configured with, read at run time
# (`apt-get indextargets`); nothing here names a host. deploy/Dockerfile is unchanged: it
# builds FROM python:3.11-slim, real or stand-in. A stand-in is labelled
# `antifraud.stand-in=true`, so `podman image inspect` tells the two apart. The stand-in
# also trusts this machine's local CA certificates (/usr/local/share/ca-certificates), so
# that pip reaches PyPI through a TLS-inspecting egress proxy where there is one.
set -euo pipefail

PODMAN=${PODMAN:-podman}
PYTHON_IMAGE=${PYTHON_IMAGE:-docker.io/library/python:3.11-slim}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-docker.io/library/postgres:15}
SUITE=bookworm
here=$(cd "$(dirname "$0")" && pwd)

have() { "$PODMAN" image exists "$1"; }

pull() {
  # A closed network refuses at once; a slow one gets two minutes.
  timeout 120 "$PODMAN" pull -q "$1" >/dev/null 2>&1
}

mirror() {
  # The URI apt fetches bookworm's main component from. apt-get indextargets reads
  # sources.list and deb822 .sources files alike.
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null |
    awk -v s="$SUITE" '$2 == s && $3 == "main" { print $1; exit }'
}

make_python() {
  local uri tar
  uri=$(mirror)
  if [[ -z $uri ]]; then
    # A new machine may not have fetched apt's lists yet.
    apt-get update -q >/dev/null 2>&1 || true
    uri=$(mirror)
  fi
  if [[ -z $uri ]]; then
    echo "container_base: apt has no source for Debian $SUITE main (run apt-get update?)" >&2
    return 1
  fi
  tar=$(mktemp /var/tmp/antifraud-rootfs.XXXXXX)
  trap 'rm -rf "$tar" "$tar.d" "$tar.log"' RETURN
  local started=$SECONDS include=python3,python3-venv,ca-certificates,netbase,tzdata
  if command -v mmdebstrap >/dev/null; then
    # mmdebstrap: Debian's faster debootstrap (apt resolves, dpkg runs without fsync);
    # about half the time here, and it writes the tarball itself.
    echo "container_base: $PYTHON_IMAGE cannot be pulled; making a stand-in from Debian $SUITE (mmdebstrap)"
    # As Debian's slim images: no recommended packages, no docs, man pages or translations.
    mmdebstrap --quiet --variant=minbase --include="$include" --format=tar \
      --aptopt='APT::Install-Recommends "false"' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --customize-hook="'$here/container/customize-rootfs.sh' \"\$1\"" \
      "$SUITE" "$tar" "deb $uri $SUITE main" >"$tar.log" 2>&1 || {
      tail -20 "$tar.log" >&2
      return 1
    }
  elif command -v debootstrap >/dev/null; then
    echo "container_base: $PYTHON_IMAGE cannot be pulled; making a stand-in from Debian $SUITE (debootstrap)"
    mkdir "$tar.d"
    debootstrap --variant=minbase --include="$include" "$SUITE" "$tar.d" "$uri" >"$tar.log" 2>&1 || {
      tail -20 "$tar.log" >&2
      return 1
    }
    "$here/container/customize-rootfs.sh" "$tar.d"
    tar --numeric-owner --xattrs -C "$tar.d" -cf "$tar" .
  else
    echo "container_base: neither mmdebstrap nor debootstrap (scripts/container_setup.sh installs them)" >&2
    return 1
  fi
  "$PODMAN" import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change 'LABEL antifraud.stand-in=true' \
    "$tar" "$PYTHON_IMAGE" >/dev/null
  echo "container_base: $PYTHON_IMAGE made in $((SECONDS - started)) s"
}

make_postgres() {
  local started=$SECONDS
  echo "container_base: $POSTGRES_IMAGE cannot be pulled; building a stand-in on $PYTHON_IMAGE"
  # --network host: the build fetches Debian packages through this machine's apt source.
  "$PODMAN" build -q --network host --pull=never --runtime "${ANTIFRAUD_PODMAN_RUNTIME:-runc}" \
    --build-arg "BASE=$PYTHON_IMAGE" \
    -f "$here/container/postgres.Containerfile" -t "$POSTGRES_IMAGE" "$here/container" >/dev/null
  echo "container_base: $POSTGRES_IMAGE made in $((SECONDS - started)) s"
}

have "$PYTHON_IMAGE" || pull "$PYTHON_IMAGE" || make_python
have "$POSTGRES_IMAGE" || pull "$POSTGRES_IMAGE" || make_postgres

#!/bin/sh
# Finish a Debian root file system made by mmdebstrap or debootstrap as the python:3.11-slim
# stand-in (scripts/container_base.sh): `python` on PATH as in the real image, this
# machine's local CA certificates trusted (pip in the image build reaches PyPI through a
# TLS-inspecting egress proxy where there is one), no apt lists, caches, docs or logs.
set -eu
root=$1
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
ln -sf /usr/bin/python3 "$root/usr/local/bin/python3"
found=0
for crt in /usr/local/share/ca-certificates/*.crt; do
  [ -e "$crt" ] || continue
  cp "$crt" "$root/usr/local/share/ca-certificates/"
  found=1
done
if [ "$found" = 1 ]; then
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
chmod 0755 "$root"

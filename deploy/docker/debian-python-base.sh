#!/usr/bin/env bash
# Build a local Python 3.11 base image from Debian bookworm with debootstrap, for machines that
# cannot pull python:3.11-slim from a registry. Debian 12's python3 is 3.11, the version the
# services target. Needs root, debootstrap and buildah:
#   apt-get install -y debootstrap buildah
#   deploy/docker/debian-python-base.sh            # -> localhost/civicgrid-python:3.11-bookworm
#   make images PYTHON_IMAGE=localhost/civicgrid-python:3.11-bookworm
set -euo pipefail

IMAGE=${1:-localhost/civicgrid-python:3.11-bookworm}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the Dockerfiles need beyond an essential system: python with venv (uv's installer is
# pip-installed into a venv), passwd (useradd), CA certificates (PyPI over TLS).
PACKAGES=python3,python3-venv,python-is-python3,passwd,ca-certificates

for tool in debootstrap buildah; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done

ROOTFS=$(mktemp -d /tmp/civicgrid-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR"
# A smaller image: no apt lists, caches or docs.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/usr/share/doc/* \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
"$ROOTFS"/usr/bin/python3 --version 2>/dev/null || chroot "$ROOTFS" python3 --version

container=$(buildah from scratch)
tar -C "$ROOTFS" -cf - . | buildah add "$container" - / >/dev/null 2>&1 || {
    tar -C "$ROOTFS" -cf "$ROOTFS.tar" . && buildah add "$container" "$ROOTFS.tar" / >/dev/null
    rm -f "$ROOTFS.tar"
}
buildah config --env LANG=C.UTF-8 --cmd python3 "$container"
buildah commit --rm "$container" "$IMAGE"
echo "built $IMAGE"

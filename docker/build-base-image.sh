#!/usr/bin/env bash
# Builds debian:bookworm-slim locally when no registry can be reached (air-gapped or
# registry-less machines): the same Debian release both Dockerfiles start from, made with
# debootstrap from the apt mirror, then imported as an image.
set -euo pipefail
IMAGE="${1:-debian:bookworm-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE already present"
  exit 0
fi
if timeout 60 docker pull "$IMAGE" >/dev/null 2>&1; then
  echo "pulled $IMAGE"
  exit 0
fi
echo "cannot pull $IMAGE: building it with debootstrap from $MIRROR"
root="$(mktemp -d /tmp/bookworm-root.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$MIRROR"
# What the official slim image drops: package lists, docs, man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$IMAGE"
echo "imported $IMAGE"

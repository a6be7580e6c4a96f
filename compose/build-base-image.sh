#!/usr/bin/env bash
# Build a local Debian bookworm base image with python3 for hosts that cannot
# pull the official python image. Usage: compose/build-base-image.sh [IMAGE]
#
# The root filesystem comes from debootstrap (minbase plus python3,
# python3-venv, python3-pip, ca-certificates), gets this machine's CA bundle
# (so pip inside `docker build` trusts the same certificates as the host) and
# is imported with `docker import`. The rootfs tarball is cached, so a rebuild
# after `docker system prune` takes seconds. Needs root, debootstrap and a
# Docker engine.
#
# Environment:
#   FEDNET_CACHE_DIR  where the rootfs tarball is kept (~/.cache/fednet)
#   DEBIAN_MIRROR     the Debian mirror (http://deb.debian.org/debian)
#   CA_BUNDLE         the CA bundle copied in (/etc/ssl/certs/ca-certificates.crt)
#   FORCE=1           rebuild the tarball and the image even when cached
set -euo pipefail

image=${1:-fednet-base:bookworm}
suite=bookworm
packages=python3,python3-venv,python3-pip,ca-certificates
cache_dir=${FEDNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fednet}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
force=${FORCE:-0}

log() { printf 'build-base-image: %s\n' "$*" >&2; }

if [ "$force" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  log "$image already exists; nothing to do (FORCE=1 rebuilds it)"
  exit 0
fi
[ -r "$ca_bundle" ] || { log "cannot read CA bundle $ca_bundle"; exit 1; }

# The cache key covers everything that goes into the tarball.
key=$( { echo "$suite $packages $mirror"; cat "$ca_bundle"; } | sha256sum | cut -c1-12)
tarball=$cache_dir/rootfs-$suite-$key.tar.gz

if [ "$force" = 1 ] || [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || {
    log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  [ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }
  mkdir -p "$cache_dir"
  rootfs=$(mktemp -d "${TMPDIR:-/tmp}/fednet-rootfs.XXXXXX")
  trap 'rm -rf "$rootfs" "$tarball.part"' EXIT
  log "debootstrap $suite into $rootfs (a few minutes)"
  PATH=$PATH:/usr/sbin:/sbin debootstrap --variant=minbase --include="$packages" \
    "$suite" "$rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 || {
    log "debootstrap failed; see $cache_dir/debootstrap.log"; tail -20 "$cache_dir/debootstrap.log" >&2
    exit 1; }
  install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # Drop what a container never uses; keep the copyright files.
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name 'locale.alias' \
    -exec rm -rf {} +
  log "packing $tarball"
  tar --numeric-owner --xattrs -C "$rootfs" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' \
    --exclude='./tmp/*' -cf - . | gzip -1 >"$tarball.part"
  mv "$tarball.part" "$tarball"
  # Older tarballs (another CA bundle or package list) are no longer used.
  find "$cache_dir" -name "rootfs-$suite-*.tar.gz" -not -name "$(basename "$tarball")" -delete
fi

log "importing $tarball as $image"
docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  --message "debootstrap $suite ($packages)" \
  "$tarball" "$image" >/dev/null
log "built $image"

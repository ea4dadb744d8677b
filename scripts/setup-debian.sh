#!/usr/bin/env bash
# Install the Debian packages emustore's tests and demo use (real registry, real dockerd oracle).
# Runs only as root; installs only what is missing, so it is quick on a machine that has them.
set -euo pipefail
declare -A want=(
  [docker-registry]=/usr/bin/docker-registry
  [docker.io]=/usr/sbin/dockerd
  [skopeo]=/usr/bin/skopeo
  [tar-split]=/usr/bin/tar-split
  [busybox-static]=/bin/busybox
  [chromium]=/usr/bin/chromium
  [tmux]=/usr/bin/tmux
  [e2fsprogs]=/usr/sbin/mkfs.ext4
  [curl]=/usr/bin/curl
  [zstd]=/usr/bin/zstd
  [mmdebstrap]=/usr/bin/mmdebstrap
)
missing=()
for pkg in "${!want[@]}"; do
  [ -x "${want[$pkg]}" ] || missing+=("$pkg")
done
# busybox-static must be the static one (the test images copy it into layers)
if [ -x /bin/busybox ] && ! file -L /bin/busybox 2>/dev/null | grep -q "statically linked"; then
  missing+=(busybox-static)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}" file

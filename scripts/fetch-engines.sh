#!/usr/bin/env bash
# Fetch the Docker engines the 26 and 28 oracle tiers run (issue 16; shared docs engines.md §1):
#   26: docker.io 26.1.* and containerd from Debian 13 "trixie"
#   28: docker.io 28.5.* and containerd from Debian "sid"
# into $EMUSTORE_ENGINE_CACHE/<major>/ (default ~/.cache/emustore/engines/<major>/):
#   root/      the two packages extracted with dpkg-deb -x (nothing is installed)
#   bin/       the daemon's PATH: dockerd, containerd, containerd-shim-runc-v2, ctr, docker-proxy (new),
#              runc = Debian 12's /usr/sbin/runc (the new ones need glibc 2.38), docker-init = tini-static
#   VERSIONS   "<package> <version>" lines and the suite
# A private apt configuration (own sources list, state, cache; Debian's mirror as this machine's apt
# names it) downloads them, and apt checks them against the suite's Release file signed with
# debian-archive-keyring. The system's apt state is not touched.
# Usage: fetch-engines.sh [--refresh] [MAJOR...]   (all majors by default; a cached major is kept
# without network access unless --refresh, which re-reads the suite and replaces it if it moved)
set -euo pipefail

MAJORS=(26 28)
declare -A SUITE=([26]=trixie [28]=sid)
declare -A PIN=([26]=26.1. [28]=28.5.)
PACKAGES=(docker.io containerd)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SYSTEM_RUNC=/usr/sbin/runc
SYSTEM_TINI=/usr/bin/tini-static
CACHE=${EMUSTORE_ENGINE_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/emustore/engines}

die() { echo "fetch-engines: $*" >&2; exit 1; }

refresh=false
majors=()
for arg in "$@"; do
  case $arg in
    --refresh) refresh=true ;;
    *) [ -n "${SUITE[$arg]:-}" ] || die "unknown engine '$arg' (known: ${MAJORS[*]})"; majors+=("$arg") ;;
  esac
done
[ ${#majors[@]} -gt 0 ] || majors=("${MAJORS[@]}")

report() {  # MAJOR DIR: one line with the exact versions
  echo "engine $1: $(tr '\n' ' ' <"$2/VERSIONS")($2)"
}

debian_mirror() {  # the archive URI this machine's apt uses for its own release
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "cannot tell this machine's Debian release from /etc/os-release"
  apt-get -o Debug::NoLocking=1 --print-uris update 2>/dev/null \
    | sed -n "s|^'\(.*\)/dists/$codename/InRelease'.*|\1|p" | head -n1
}

fetch() {  # MAJOR MIRROR: read the suite, then download, verify, extract into $CACHE/MAJOR unless it has those versions
  local major=$1 mirror=$2 suite=${SUITE[$1]} pin=${PIN[$1]}
  local apt_dir="$CACHE/.apt/$suite" work="$CACHE/.$major.new" pkg version versions=""
  local -A chosen=()
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/parts"
  : >"$apt_dir/status"
  echo "deb [arch=amd64 signed-by=$KEYRING] $mirror $suite main" >"$apt_dir/sources.list"
  local apt=(
    -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir" -o "Dir::Cache::Archives=$apt_dir/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
    -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$apt_dir/parts"
    -o "APT::Architectures=amd64" -o "Acquire::Languages=none" -o "APT::Sandbox::User=root"
  )
  # an unsigned or badly signed Release file is an error of apt-get update (and download)
  apt-get -q "${apt[@]}" update >"$apt_dir/update.log" 2>&1 \
    || die "apt-get update of Debian $suite failed (log: $apt_dir/update.log): $(tail -n1 "$apt_dir/update.log")"
  grep '^W:' "$apt_dir/update.log" >&2 || true
  for pkg in "${PACKAGES[@]}"; do
    version=$(apt-cache "${apt[@]}" policy "$pkg" | sed -n 's/^  Candidate: //p')
    [ -n "$version" ] && [ "$version" != "(none)" ] \
      || die "Debian $suite no longer has $pkg (engine $major): a new dialect to observe, see engines.md"
    if [ "$pkg" = docker.io ] && [[ $version != "$pin"* ]]; then
      die "Debian $suite now has docker.io $version, not the pinned ${pin}*: engine $major is gone there;" \
        "its successor is a new dialect to observe (engines.md §2, issue 16) before it is pinned here"
    fi
    chosen[$pkg]=$version
    versions+="$pkg $version"$'\n'
  done
  versions+="suite $suite"$'\n'
  if [ -x "$CACHE/$major/root/usr/sbin/dockerd" ] && [ "$(cat "$CACHE/$major/VERSIONS" 2>/dev/null)"$'\n' = "$versions" ]; then
    return 0  # --refresh: the suite still has the cached versions
  fi
  rm -rf "$work"
  mkdir -p "$work/root" "$work/bin" "$work/debs"
  for pkg in "${PACKAGES[@]}"; do
    (cd "$work/debs" && apt-get -q "${apt[@]}" download "$pkg=${chosen[$pkg]}" >/dev/null) \
      || die "apt-get download $pkg=${chosen[$pkg]} from Debian $suite failed"
  done
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  rm -rf "$work/debs"
  for tool in usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr usr/sbin/docker-proxy usr/sbin/dockerd; do
    [ -x "$work/root/$tool" ] || die "the $suite packages lack $tool"
    ln -s "../root/$tool" "$work/bin/${tool##*/}"
  done
  ln -s "$SYSTEM_RUNC" "$work/bin/runc"
  ln -s "$SYSTEM_TINI" "$work/bin/docker-init"
  printf %s "$versions" >"$work/VERSIONS"  # last: a tree with VERSIONS is complete
  rm -rf "${CACHE:?}/$major"
  mv -T "$work" "$CACHE/$major"
}

for tool in "$SYSTEM_RUNC" "$SYSTEM_TINI"; do
  [ -x "$tool" ] || die "$tool is missing (Debian 12's runc and tini, installed with docker.io by setup-debian.sh)"
done
mirror=""
for major in "${majors[@]}"; do
  dir="$CACHE/$major"
  if ! $refresh && [ -s "$dir/VERSIONS" ] && [ -x "$dir/root/usr/sbin/dockerd" ]; then
    report "$major" "$dir"
    continue
  fi
  [ -n "$mirror" ] || mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "no Debian archive found in this machine's apt sources"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9  # one fetch at a time per cache
  fetch "$major" "$mirror"
  report "$major" "$dir"
done

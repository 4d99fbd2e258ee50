#!/usr/bin/env bash
# install-deps.sh: install gw's build and test dependencies from Debian 12 packages.
# Idempotent: installs only what is missing; needs root (or sudo) when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkgconf ccache git
  libboost1.81-dev libboost-url1.81-dev
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev catch2 libbenchmark-dev
  libssl-dev libyaml-cpp-dev libnghttp2-dev libhiredis-dev libcrypt-dev
  libre2-dev libgoogle-perftools-dev libsystemd-dev liblua5.4-dev
  redis-server openssl curl python3 python3-jsonschema python3-yaml zsh fish
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

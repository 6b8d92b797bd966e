#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, test and run shopcqrs.
# Idempotent: does nothing (not even `apt-get update`) when everything is installed.
set -euo pipefail

PACKAGES=(
  cmake g++ pkg-config git ninja-build clang-format ccache
  clang libclang-rt-14-dev
  libpq-dev libboost1.81-dev libboost-json1.81-dev libspdlog-dev libfmt-dev libcli11-dev
  libtomlplusplus-dev libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev libnats-dev
  prometheus-cpp-dev
  uuid-dev libssl-dev jq python3 python3-jsonschema gnuplot-nox
  postgresql-15 postgresql-contrib redis-server nats-server
)

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: not root and sudo is not available; install them as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

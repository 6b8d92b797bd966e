#!/usr/bin/env bash
# Configures and builds shopcqrs with Ninja into <repo>/build (RelWithDebInfo).
# Extra arguments are passed to the build step, e.g. `scripts/build.sh shopcqrs`.
# Set CI=true to turn warnings into errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR="$ROOT/build"

cmake_args=(-S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${CI:-}" == "true" ]]; then
  cmake_args+=(-DSHOPCQRS_WERROR=ON)
fi

cmake "${cmake_args[@]}"
cmake --build "$BUILD_DIR" -j2 -- "$@"

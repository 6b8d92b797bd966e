#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (unit, integration, blackbox).
# Integration and blackbox tests start their own servers. Extra arguments go to ctest,
# e.g. `scripts/test.sh -L unit` or `scripts/test.sh -R Config`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh"
ctest --test-dir "$ROOT/build" --output-on-failure --no-tests=error -j2 --timeout "${SHOPCQRS_TEST_TIMEOUT:-300}" "$@"

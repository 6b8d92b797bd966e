#!/usr/bin/env bash
# Installs dependencies, builds, and runs `shopcqrs up` from the repository root, so its
# data lives in <repo>/var unless --data-dir says otherwise. Arguments go to `shopcqrs up`,
# e.g. `scripts/up.sh --listen 127.0.0.1:9000`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh"
cd "$ROOT"
exec "$ROOT/build/src/apps/shopcqrs/shopcqrs" up "$@"

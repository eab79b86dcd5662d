#!/usr/bin/env bash
# Configures and builds the CPU build into build/ (binaries in build/bin/).
# clang++ is used because precompiled ATen headers make Torch TUs ~4x cheaper
# with it; set CXX to override.
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CXX="${CXX:-clang++}" cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
cmake --build build -j "$(nproc)"

#!/usr/bin/env bash
# Configures and builds into build/ (binaries in build/bin/) against the
# LibTorch that scripts/install-deps.sh put into .venv/. The default is the
# GPU configuration (CHRONOS_WITH_CUDA=ON: CUDA LibTorch, NCCL, the CUDA
# runtime of worker/cuda/); the same binaries run on CPU where there is no
# GPU. CHRONOS_WITH_CUDA=OFF scripts/build.sh builds without worker/cuda/.
# clang++ is used because precompiled ATen headers make Torch TUs ~4x
# cheaper with it; set CXX to override. Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
torch_cmake="$(scripts/torch-prefix.sh)"
# The CUDA toolkit of .venv (scripts/install-deps.sh), not a system one.
cuda_root="$(cd "$torch_cmake/../../../nvidia/cu13" && pwd)"
export PATH="$cuda_root/bin:$PATH"
CXX="${CXX:-clang++}" cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_cmake" -DCUDAToolkit_ROOT="$cuda_root" \
  -DCHRONOS_WITH_CUDA="${CHRONOS_WITH_CUDA:-ON}" "${launcher[@]}" "$@"
cmake --build build -j "${CHRONOS_BUILD_JOBS:-$(nproc)}"

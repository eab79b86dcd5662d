#!/usr/bin/env bash
# Installs everything the build, the tests and the local cluster need on a
# fresh Debian 12 / Ubuntu 24.04 machine:
#  - Debian packages (gRPC, Protobuf, Abseil, prometheus-cpp, SQLite, ...);
#    --no-install-recommends keeps GTK, Qt and Mesa out;
#  - LibTorch 2.x from PyPI's `torch` wheel (a CUDA build: libtorch_cuda,
#    libc10_cuda, NCCL and the CUDA runtime come as `nvidia-*` wheels) into
#    the virtual environment .venv/ inside the checkout. It is pinned; pip's
#    download cache (~/.cache/pip) makes a second install quick, and an
#    existing .venv with the pinned version is kept as it is.
# One LibTorch serves the CPU and the GPU configurations; a CUDA LibTorch
# runs on a machine without a GPU (CUDA reports no device).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${CHRONOS_TORCH_VERSION:-2.15.0}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# libgloo-dev: headers only, for c10d's ProcessGroupGloo.hpp (the wheel ships
# no Gloo headers); nothing links Debian's libgloo. docs/architecture.md,
# "Gloo headers", says why that is safe.
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential clang clang-format cmake ninja-build ccache pkg-config git ca-certificates \
  python3 python3-venv libgloo-dev \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev \
  libyaml-cpp-dev libcli11-dev libsqlite3-dev nlohmann-json3-dev libgoogle-glog-dev \
  prometheus yamllint python3-yaml python3-jsonschema

venv=.venv
have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
if [ "$have" != "$TORCH_VERSION" ]; then
  echo "installing torch==$TORCH_VERSION (LibTorch) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
fi
# The torch wheel's CMake config needs a CUDA compiler and toolkit layout at
# configure time, even where nothing is compiled for a GPU. The matching
# nvcc, NVVM and CRT wheels (same version as the wheel's CUDA runtime) make
# .venv/.../nvidia/cu13 that toolkit, so no system CUDA is needed and every
# machine builds against the same one; scripts/build.sh points CMake at it.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cuda_version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("nvidia-cuda-runtime"))')"
if [ ! -x "$site/nvidia/cu13/bin/nvcc" ] ||
   [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("nvidia-cuda-nvcc"))' 2>/dev/null)" != "$cuda_version" ]; then
  echo "installing the CUDA $cuda_version compiler wheels into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "nvidia-cuda-nvcc==$cuda_version" "nvidia-nvvm==$cuda_version" \
    "nvidia-cuda-crt==$cuda_version"
fi
# The wheels ship versioned libraries only (libcudart.so.13); CMake's CUDA
# modules look for the unversioned names a toolkit has.
for lib in "$site"/nvidia/*/lib/lib*.so.*; do
  base="${lib%%.so.*}.so"
  [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
done
echo "LibTorch $TORCH_VERSION and CUDA $cuda_version in $venv ($(scripts/torch-prefix.sh))"

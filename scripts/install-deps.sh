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
  build-essential clang cmake ninja-build ccache pkg-config git ca-certificates \
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
echo "LibTorch $TORCH_VERSION in $venv ($(scripts/torch-prefix.sh))"

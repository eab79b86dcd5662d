#!/usr/bin/env bash
# Installs everything the CPU build, the tests and the local cluster need on a
# fresh Debian 12 / Ubuntu 24.04 machine. Without --no-install-recommends the
# LibTorch packages pull in GTK, Qt and Mesa.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential clang cmake ninja-build ccache pkg-config git ca-certificates python3 \
  libtorch-dev libgloo-dev libopenblas0-openmp \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev \
  libyaml-cpp-dev libcli11-dev libsqlite3-dev nlohmann-json3-dev libgoogle-glog-dev \
  prometheus yamllint python3-yaml python3-jsonschema

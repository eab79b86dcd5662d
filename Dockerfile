# syntax=docker/dockerfile:1.6
#
# Chronos image: chronos-coordinator, chronos-worker and chronosctl.
#
# CPU (default, Debian 12 packages, LibTorch from libtorch-dev):
#   docker build -t chronos:0.1.0 .
#
# GPU (CUDA LibTorch + NCCL; see docs/deployment.md, "GPU image"):
#   docker buildx build \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-devel-ubuntu24.04 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg WITH_CUDA=ON \
#     --build-arg RUNTIME_PACKAGES="<the base's runtime package names>" \
#     --build-context libtorch=/path/to/unzipped/libtorch \
#     -t chronos:0.1.0-cuda .
#
# No ENTRYPOINT: the command names the daemon, e.g.
#   docker run chronos:0.1.0 chronos-coordinator --listen 0.0.0.0:7070 ...

ARG BASE_IMAGE=debian:12-slim
ARG RUNTIME_IMAGE=debian:12-slim

# An empty stage by default. GPU builds replace it with the unzipped LibTorch
# distribution: --build-context libtorch=/path/to/libtorch
FROM scratch AS libtorch

# ---------------------------------------------------------------- build stage
FROM ${BASE_IMAGE} AS build
ARG WITH_CUDA=OFF
ARG TORCH_PREFIX=/opt/libtorch
ARG BUILD_TYPE=Release
# Parallel compile jobs; empty lets Ninja choose (lower it if the builder runs out of memory).
ARG BUILD_JOBS=
ARG BUILD_PACKAGES="build-essential cmake ninja-build clang ccache pkg-config libgloo-dev libopenblas0-openmp libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev libyaml-cpp-dev libcli11-dev libsqlite3-dev nlohmann-json3-dev libgoogle-glog-dev"
ARG DEBIAN_FRONTEND=noninteractive

# libtorch-dev (CPU LibTorch 1.13) only for the CPU build; the CUDA build
# uses the LibTorch distribution copied to ${TORCH_PREFIX}. Package versions
# are those of the base image's release (a build argument), so they are not
# pinned here (DL3008); ${pkgs} is a list, split on purpose (SC2086).
# hadolint ignore=DL3008,SC2086
RUN set -eux; \
    pkgs="${BUILD_PACKAGES}"; \
    if [ "${WITH_CUDA}" != "ON" ]; then pkgs="${pkgs} libtorch-dev"; fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends ${pkgs}; \
    rm -rf /var/lib/apt/lists/*

COPY --from=libtorch / ${TORCH_PREFIX}/

WORKDIR /src
COPY . .

RUN --mount=type=cache,target=/root/.cache/ccache \
    set -eux; \
    extra=""; \
    if [ "${WITH_CUDA}" = "ON" ]; then \
      if [ ! -f "${TORCH_PREFIX}/share/cmake/Torch/TorchConfig.cmake" ]; then \
        echo "WITH_CUDA=ON needs a CUDA LibTorch in ${TORCH_PREFIX}: pass --build-context libtorch=/path/to/libtorch" >&2; \
        exit 1; \
      fi; \
      extra="-DCMAKE_PREFIX_PATH=${TORCH_PREFIX}"; \
    fi; \
    cmake -S . -B build -G Ninja \
      -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
      -DCHRONOS_BUILD_TESTS=OFF \
      -DCHRONOS_BUILD_BENCH=OFF \
      -DCHRONOS_WITH_CUDA="${WITH_CUDA}" \
      ${extra}; \
    cmake --build build ${BUILD_JOBS:+--parallel "${BUILD_JOBS}"}; \
    mkdir -p /out/bin /out/lib; \
    cp build/bin/chronos-coordinator build/bin/chronos-worker build/bin/chronosctl /out/bin/; \
    strip --strip-unneeded /out/bin/*; \
    if [ "${WITH_CUDA}" = "ON" ]; then cp -a "${TORCH_PREFIX}/lib/." /out/lib/; fi

# -------------------------------------------------------------- runtime stage
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG RUNTIME_PACKAGES="libtorch1.13 libgrpc++1.51 libprotobuf32 libyaml-cpp0.7 libsqlite3-0 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libopenblas0-openmp libgloo0 libgoogle-glog0v6 libabsl20220623"
ARG DEBIAN_FRONTEND=noninteractive

LABEL org.opencontainers.image.title="chronos" \
      org.opencontainers.image.description="Chronos: memory-efficient pipeline-parallel LLM pretraining (coordinator, worker, chronosctl)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# Versions: those of the runtime image's release, as in the build stage.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates ${RUNTIME_PACKAGES}; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 chronos; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/chronos \
      --no-create-home --shell /usr/sbin/nologin chronos; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/chronos

COPY --from=build /out/lib/ /opt/chronos/lib/
COPY --from=build /out/bin/ /usr/local/bin/

# Fail the build, not the pod, when a shared library is missing. libcuda and
# the other driver libraries come from the host at run time. The pipe's
# status is not wanted (DL4006): its output is checked, and a missing
# binary fails at `chronosctl --help`.
# hadolint ignore=DL4006
RUN set -eu; \
    echo /opt/chronos/lib > /etc/ld.so.conf.d/chronos.conf; \
    ldconfig; \
    missing="$(ldd /usr/local/bin/chronos-coordinator /usr/local/bin/chronos-worker /usr/local/bin/chronosctl \
      | grep 'not found' | grep -v -e 'libcuda\.so' -e 'libnvidia' || true)"; \
    if [ -n "${missing}" ]; then echo "missing shared libraries:" >&2; echo "${missing}" >&2; exit 1; fi; \
    chronosctl --help > /dev/null

USER 10001:10001
WORKDIR /var/lib/chronos
# gRPC (coordinator 7070, worker health 7071) and metrics (9464, 9465)
EXPOSE 7070 7071 9464 9465
STOPSIGNAL SIGTERM
# Checks a coordinator. Workers serve health on 7071: compose and Kubernetes
# override this (Kubernetes ignores HEALTHCHECK and uses its grpc probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["chronosctl", "health", "--server", "127.0.0.1:7070"]
CMD ["chronosctl", "--help"]

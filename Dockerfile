# syntax=docker/dockerfile:1.6
#
# Chronos image: chronos-coordinator, chronos-worker and chronosctl. One
# image serves CPU and GPU: the binaries are built against the CUDA
# LibTorch of PyPI's torch wheel (scripts/install-deps.sh, the same as on a
# machine), whose CUDA runtime, cuDNN and NCCL libraries travel in the
# image; the GPU driver (libcuda) comes from the host at run time (NVIDIA
# container toolkit, `--gpus` / a GPU resource in Kubernetes).
#
#   docker build -t chronos:0.1.0 .
#
# No ENTRYPOINT: the command names the daemon, e.g.
#   docker run chronos:0.1.0 chronos-coordinator --listen 0.0.0.0:7070 ...
#   docker run --gpus all chronos:0.1.0 chronos-worker --device cuda:0 ...

ARG BASE_IMAGE=debian:12-slim
ARG RUNTIME_IMAGE=debian:12-slim

# ---------------------------------------------------------------- build stage
FROM ${BASE_IMAGE} AS build
ARG BUILD_TYPE=Release
# Parallel compile jobs; empty lets Ninja choose (lower it if the builder runs out of memory).
ARG BUILD_JOBS=
ARG DEBIAN_FRONTEND=noninteractive
# The torch wheel's version (scripts/install-deps.sh pins the same default).
ARG TORCH_VERSION=2.15.0

WORKDIR /src
COPY . .

# scripts/install-deps.sh holds the one package list (Debian packages, the
# torch wheel and the CUDA compiler wheels into /src/.venv); the build is
# scripts/build.sh without tests and benchmarks. LibTorch and the nvidia-*
# libraries are kept in the wheel's layout (/out/python/{torch,nvidia}):
# libtorch_cuda finds its CUDA libraries through $ORIGIN/../../nvidia.
# Last, the runtime stage's package list is derived from what the binaries
# and LibTorch link (ldd, then the Debian package owning each library). The
# pipe's status is not wanted (DL4006: ldd fails on the odd non-ELF file);
# `test -s` checks that the list is not empty.
# hadolint ignore=DL4006
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=cache,target=/root/.cache/ccache \
    set -eux; \
    CHRONOS_TORCH_VERSION="${TORCH_VERSION}" scripts/install-deps.sh; \
    CHRONOS_BUILD_JOBS="${BUILD_JOBS:-$(nproc)}" scripts/build.sh \
      -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" -DCHRONOS_BUILD_TESTS=OFF -DCHRONOS_BUILD_BENCH=OFF; \
    mkdir -p /out/bin /out/python; \
    cp build/bin/chronos-coordinator build/bin/chronos-worker build/bin/chronosctl /out/bin/; \
    strip --strip-unneeded /out/bin/*; \
    site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
    mkdir -p /out/python/torch /out/python/nvidia; \
    cp -a "${site}/torch/lib" /out/python/torch/; \
    for d in "${site}"/nvidia/*/lib; do \
      mkdir -p "/out/python/nvidia/$(basename "$(dirname "$d")")"; \
      cp -a "$d" "/out/python/nvidia/$(basename "$(dirname "$d")")/"; \
    done; \
    ldd /out/bin/* /out/python/torch/lib/*.so* 2>/dev/null \
      | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u \
      | while read -r lib; do dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true; done \
      | cut -d: -f1 | sort -u > /out/runtime-packages; \
    test -s /out/runtime-packages; cat /out/runtime-packages

# -------------------------------------------------------------- runtime stage
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
# Extra runtime packages, if any; the ones the binaries and LibTorch link
# against are derived in the build stage (/out/runtime-packages: the Debian
# packages owning every library ldd resolves outside the copied wheels), so
# build and runtime bases must be the same release.
ARG RUNTIME_PACKAGES=""
ARG DEBIAN_FRONTEND=noninteractive

LABEL org.opencontainers.image.title="chronos" \
      org.opencontainers.image.description="Chronos: memory-efficient pipeline-parallel LLM pretraining (coordinator, worker, chronosctl)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY --from=build /out/runtime-packages /tmp/runtime-packages
# Versions: those of the runtime image's release, as in the build stage.
# hadolint ignore=DL3008,SC2046
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates \
      $(cat /tmp/runtime-packages) ${RUNTIME_PACKAGES}; \
    rm -f /tmp/runtime-packages; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 chronos; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/chronos \
      --no-create-home --shell /usr/sbin/nologin chronos; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/chronos

COPY --from=build /out/python/ /opt/chronos/python/
COPY --from=build /out/bin/ /usr/local/bin/

# Fail the build, not the pod, when a shared library is missing. libcuda and
# the other driver libraries come from the host at run time. The pipe's
# status is not wanted (DL4006): its output is checked, and a missing
# binary fails at `chronosctl --help`.
# hadolint ignore=DL4006
RUN set -eu; \
    { echo /opt/chronos/python/torch/lib; ls -d /opt/chronos/python/nvidia/*/lib; } > /etc/ld.so.conf.d/chronos.conf; \
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

#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs
# each for FUZZ_SECONDS (default 600) from the seeds in tests/fuzz/corpus/.
# New inputs go to build-fuzz/corpus/<target>/; a crash leaves crash-* files
# in build-fuzz/ and a non-zero exit. Turn every crash into a regression test
# (tests/core/fuzz_regression_test.cc) before fixing it.
#   scripts/fuzz.sh [job_spec_fuzzer|schedule_validator_fuzzer ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-600}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(job_spec_fuzzer schedule_validator_fuzzer); fi
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCHRONOS_BUILD_FUZZERS=ON \
  -DCHRONOS_BUILD_TESTS=OFF -DCHRONOS_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --target "${targets[@]}"
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/${t%_fuzzer}
  [ "$t" = schedule_validator_fuzzer ] && seeds=tests/fuzz/corpus/schedule
  mkdir -p "build-fuzz/corpus/$t"
  echo "== $t for ${seconds}s"
  (cd build-fuzz && "bin/$t" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
     -rss_limit_mb=2048 "corpus/$t" "../$seeds")
done

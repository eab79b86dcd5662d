#!/usr/bin/env bash
# The test command of the README and of CI: install, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-format.sh
scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 1500 -j 2
scripts/check-deploy.sh

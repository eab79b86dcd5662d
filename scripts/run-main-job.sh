#!/usr/bin/env bash
# The README's main job: install, build, then train the small byte-level GPT
# of examples/shakespeare-small.yaml on a local CPU cluster (a coordinator
# and 4 worker processes) and print the summary.
#
#   scripts/run-main-job.sh [TEXT_FILE] [extra chronosctl local run flags, e.g. -o json]
#
# TEXT_FILE defaults to data/tinyshakespeare.txt (in the repository); any
# plain text file of a few hundred KB or more works (byte-level tokenizer).
set -euo pipefail
cd "$(dirname "$0")/.."
data=data/tinyshakespeare.txt
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  data="$1"
  shift
fi
if [ ! -f "$data" ]; then
  echo "error: training text '$data' not found; pass a plain text file:" >&2
  echo "  scripts/run-main-job.sh /path/to/corpus.txt" >&2
  exit 2
fi
scripts/install-deps.sh
scripts/build.sh
spec="$(mktemp --suffix=.yaml)"
trap 'rm -f "$spec"' EXIT
abs="$(realpath "$data")"
sed "s#path: [^,}]*#path: ${abs}#" examples/shakespeare-small.yaml > "$spec"
exec build/bin/chronosctl local run -f "$spec" --workers 4 "$@"

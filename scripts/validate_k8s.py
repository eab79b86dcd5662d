#!/usr/bin/env python3
"""Validate Kubernetes manifests without a cluster or a network.

    validate_k8s.py FILE.yaml...        ('-' reads standard input)

Built-in kinds: kubernetes-validate, which bundles the Kubernetes OpenAPI
schemas, in strict mode (a field the API lacks, e.g. `readinesProbe`, fails
as with `kubeconform -strict`), against the oldest and the newest Kubernetes
version it bundles (the chart asks for >= 1.24).

Custom resources kubernetes-validate does not know (the Prometheus Operator's
ServiceMonitor and PrometheusRule, Volcano's PodGroup) are checked structurally against the
schemas below: the field names, types, enums and required fields of their
CRDs (prometheus-operator 0.93), with auth/TLS blocks only checked to be
objects; their metadata is checked as Kubernetes ObjectMeta. Any other kind
fails: give it a schema here. Kustomization files are not API objects and
are skipped.

Needs kubernetes-validate (with its jsonschema and PyYAML);
scripts/check-deploy.sh runs this with the virtual environment it installs
them into. Prints each document's result; exits 1 if any failed.
"""

import sys

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions

VERSIONS = sorted({all_versions()[0], all_versions()[-1]})

# ---- structural schemas for custom resources --------------------------------
STR, BOOL, INT, OBJ = ({"type": t} for t in ("string", "boolean", "integer", "object"))
COUNT = {"type": "integer", "minimum": 0}
STRS = {"type": "array", "items": STR}
STR_MAP = {"type": "object", "additionalProperties": STR}
INT_OR_STR = {"type": ["integer", "string"]}
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
PROTOCOL = {"enum": ["PrometheusProto", "OpenMetricsText0.0.1", "OpenMetricsText1.0.0",
                     "PrometheusText0.0.4", "PrometheusText1.0.0"]}


def obj(props, required=()):
    """An object with exactly these fields (unknown ones fail)."""
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


def array(item):
    return {"type": "array", "items": item}


RELABEL = obj({
    "action": {"enum": ("replace Replace keep Keep drop Drop hashmod HashMod labelmap LabelMap labeldrop LabelDrop "
                        "labelkeep LabelKeep lowercase Lowercase uppercase Uppercase keepequal KeepEqual "
                        "dropequal DropEqual").split()},
    "modulus": COUNT, "regex": STR, "replacement": STR, "separator": STR, "sourceLabels": STRS, "targetLabel": STR,
})
LABEL_SELECTOR = obj({
    "matchLabels": STR_MAP,
    "matchExpressions": array(obj({"key": STR, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                   "values": STRS}, ["key", "operator"])),
})
ENDPOINT = obj({
    "port": STR, "targetPort": INT_OR_STR, "path": STR, "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
    "params": {"type": "object", "additionalProperties": STRS}, "interval": DURATION, "scrapeTimeout": DURATION,
    "honorLabels": BOOL, "honorTimestamps": BOOL, "trackTimestampsStaleness": BOOL,
    "relabelings": array(RELABEL), "metricRelabelings": array(RELABEL),
    "authorization": OBJ, "basicAuth": OBJ, "oauth2": OBJ, "tlsConfig": OBJ, "bearerTokenFile": STR,
    "bearerTokenSecret": OBJ, "proxyUrl": {"type": "string", "pattern": "^(http|https|socks5)://.+$"},
    "noProxy": STR, "proxyFromEnvironment": BOOL, "proxyConnectHeader": OBJ,
    "followRedirects": BOOL, "enableHttp2": BOOL, "filterRunning": BOOL,
})
SERVICE_MONITOR_SPEC = obj({
    "endpoints": array(ENDPOINT), "selector": LABEL_SELECTOR,
    "namespaceSelector": obj({"any": BOOL, "matchNames": STRS}),
    "jobLabel": STR, "targetLabels": STRS, "podTargetLabels": STRS, "attachMetadata": obj({"node": BOOL}),
    "sampleLimit": COUNT, "targetLimit": COUNT, "labelLimit": COUNT, "labelNameLengthLimit": COUNT,
    "labelValueLengthLimit": COUNT, "keepDroppedTargets": COUNT, "nativeHistogramBucketLimit": COUNT,
    "nativeHistogramMinBucketFactor": INT_OR_STR, "scrapeClassicHistograms": BOOL, "scrapeNativeHistograms": BOOL,
    "convertClassicHistogramsToNHCB": BOOL, "scrapeProtocols": array(PROTOCOL), "fallbackScrapeProtocol": PROTOCOL,
    "scrapeClass": {"type": "string", "minLength": 1}, "bodySizeLimit": STR,
    "selectorMechanism": {"enum": ["RelabelConfig", "RoleSelector"]},
    "serviceDiscoveryRole": {"enum": ["Endpoints", "EndpointSlice"]},
}, ["endpoints", "selector"])
RULE = {**obj({"alert": STR, "record": STR, "expr": INT_OR_STR, "for": DURATION, "keep_firing_for": DURATION,
               "labels": STR_MAP, "annotations": STR_MAP}, ["expr"]),
        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}]}
PROMETHEUS_RULE_SPEC = obj({"groups": array(obj({
    "name": {"type": "string", "minLength": 1}, "interval": DURATION, "query_offset": DURATION, "limit": INT,
    "labels": STR_MAP, "partial_response_strategy": STR, "rules": array(RULE),
}, ["name"]))})

# Volcano's PodGroup (scheduling.volcano.sh/v1beta1, Volcano 1.x CRD).
QUANTITY = {"type": ["string", "integer", "number"]}
POD_GROUP_SPEC = obj({
    "minMember": COUNT, "minTaskMember": {"type": "object", "additionalProperties": COUNT},
    "queue": STR, "priorityClassName": STR, "minResources": {"type": "object", "additionalProperties": QUANTITY},
    "networkTopology": OBJ,
})

CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SPEC,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE_SPEC,
    ("scheduling.volcano.sh/v1beta1", "PodGroup"): POD_GROUP_SPEC,
}


def check_custom(doc, spec_schema):
    """Errors of a custom resource: its spec against spec_schema, its metadata as ObjectMeta."""
    schema = obj({"apiVersion": STR, "kind": STR, "metadata": obj({"name": STR}), "spec": spec_schema},
                 ["metadata", "spec"])
    schema["properties"]["metadata"]["additionalProperties"] = True  # checked as ObjectMeta below
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    if isinstance(doc.get("metadata"), dict):
        # A ConfigMap's metadata is plain ObjectMeta: borrow its schema.
        stand_in = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}
        errors += check_builtin(stand_in)
    return errors


def check_builtin(doc):
    errors = []
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"Kubernetes {version}: {'.'.join(map(str, e.path)) or '(top)'}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            return [f"unknown kind: Kubernetes {version} has no {doc['apiVersion']} {doc['kind']}, "
                    "and this script has no schema for it"]
    return errors


def main(files):
    passed = failed = 0
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except (OSError, yaml.YAMLError) as e:
            print(f"FAIL {name}: {e}")
            failed += 1
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                print(f"FAIL {name}: a document without apiVersion and kind")
                failed += 1
                continue
            if doc["apiVersion"].startswith("kustomize.config.k8s.io/"):
                continue
            api_kind = (doc["apiVersion"], doc["kind"])
            where = f"{name}: {doc['kind']}/{(doc.get('metadata') or {}).get('name', '?')}"
            if api_kind in CUSTOM:
                errors, how = check_custom(doc, CUSTOM[api_kind]), "structural CRD check"
            else:
                errors, how = check_builtin(doc), "Kubernetes " + ", ".join(VERSIONS)
            if errors:
                failed += 1
                print(f"FAIL {where}")
                for e in errors:
                    print(f"     {e}")
            else:
                passed += 1
                print(f"ok   {where} ({how})")
    if not passed + failed:
        print("no Kubernetes objects found")
        return 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))

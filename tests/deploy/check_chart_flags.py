#!/usr/bin/env python3
"""Run the daemons with the exact command lines a rendered chart gives them.

    check_chart_flags.py --bin build/bin RENDERED.yaml...   ('-' reads stdin)
    check_chart_flags.py --bin build/bin --compose docker-compose.yml

For every container of every pod template in the rendered manifests (`helm
template` output), takes `command` + `args`, expands Kubernetes' $(VAR)
references from the container's `env` the way the kubelet does (`value`;
`configMapKeyRef` from the ConfigMaps in the same render; `fieldRef` and
`secretKeyRef` with stand-in values, since only a cluster knows them), and
runs the built binary with those arguments plus `--check-flags`. The daemons
then parse and check every flag and exit without reading files or binding
ports: a duplicated flag, an unknown flag or a bad value fails here, naming
the flag, instead of crash-looping a pod.

With --compose, the same for the `command` of every Compose service that
runs a daemon (no variables to expand there).

Containers that run chronosctl (the `helm test` pod) are listed as not
checked: chronosctl has no --check-flags. Any other command fails: this
script must learn about it. Exits 1 if any check failed or no daemon was
found at all.
"""

import argparse
import os
import re
import subprocess
import sys

import yaml

DAEMONS = ("chronos-coordinator", "chronos-worker")
NOT_CHECKED = ("chronosctl",)
# What only a running cluster knows, replaced by plausible values.
FIELD_REFS = {
    "metadata.name": "chronos-worker-0",
    "metadata.namespace": "chronos",
    "status.podIP": "10.0.0.7",
    "spec.nodeName": "node-0",
}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def pod_specs(doc):
    kind = doc.get("kind")
    if kind == "Pod":
        return [doc.get("spec") or {}]
    if kind in POD_KINDS:
        return [((doc.get("spec") or {}).get("template") or {}).get("spec") or {}]
    if kind == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def expand(text, env):
    """Kubernetes' $(VAR) expansion: a defined VAR is replaced, $$ is a $."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, text)


def container_env(container, config_maps):
    env = {}
    for e in container.get("env") or []:
        name = e["name"]
        if "value" in e:
            env[name] = expand(str(e["value"]), env)
            continue
        source = e.get("valueFrom") or {}
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = config_maps.get(ref["name"])
            if data is None or ref["key"] not in data:
                if not ref.get("optional"):
                    raise ValueError(f"env {name}: ConfigMap {ref['name']} key {ref['key']} is not in the render")
                continue
            env[name] = str(data[ref["key"]])
        elif "fieldRef" in source:
            env[name] = FIELD_REFS.get(source["fieldRef"]["fieldPath"], "field-value")
        elif "secretKeyRef" in source:
            env[name] = "secret-value"
        elif "resourceFieldRef" in source:
            env[name] = "1"
    return env


def run_checks(bin_dir, commands):
    """commands: [(where, argv)]; prints a line each; returns (checked, failed)."""
    checked = failed = 0
    for where, argv in commands:
        if not argv:
            print(f"FAIL {where}: no command (the image sets no ENTRYPOINT)")
            failed += 1
            continue
        program = os.path.basename(argv[0])
        if program in NOT_CHECKED:
            print(f"skip {where}: {program} has no --check-flags")
            continue
        if program not in DAEMONS:
            print(f"FAIL {where}: unknown command {argv[0]}")
            failed += 1
            continue
        run = subprocess.run([os.path.join(bin_dir, program)] + argv[1:] + ["--check-flags"],
                             capture_output=True, text=True, timeout=60)
        checked += 1
        shown = " ".join(argv[1:])
        if run.returncode == 0:
            print(f"ok   {where}: {program} {shown}")
        else:
            failed += 1
            said = (run.stderr.strip() or run.stdout.strip()).replace("\n", " | ")
            print(f"FAIL {where}: {program} {shown}\n     exit {run.returncode}: {said}")
    return checked, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="directory with the built chronos binaries")
    parser.add_argument("--compose", help="a Compose file instead of rendered manifests")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()

    commands = []
    if args.compose:
        with open(args.compose, encoding="utf-8") as f:
            compose = yaml.safe_load(f)
        for name, service in compose["services"].items():
            command = service.get("command")
            if isinstance(command, list) and command and os.path.basename(str(command[0])) in DAEMONS:
                commands.append((f"service {name}", [str(a) for a in command]))
    docs = []
    for path in args.files:
        with (sys.stdin if path == "-" else open(path, encoding="utf-8")) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    failed = 0
    for doc in docs:
        for spec in pod_specs(doc):
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                where = f"{doc['kind']}/{doc['metadata']['name']} container {c['name']}"
                try:
                    env = container_env(c, config_maps)
                except ValueError as e:
                    print(f"FAIL {where}: {e}")
                    failed += 1
                    continue
                argv = [expand(str(a), env) for a in (c.get("command") or []) + (c.get("args") or [])]
                commands.append((where, argv))
    checked, bad = run_checks(args.bin, commands)
    failed += bad
    if checked == 0:
        print("FAIL no chronos-coordinator or chronos-worker command found")
        failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

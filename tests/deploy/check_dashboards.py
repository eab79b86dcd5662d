#!/usr/bin/env python3
"""Check the Grafana dashboards against the exported metric names.

For every dashboard JSON (default: deploy/grafana/dashboards/*.json and
helm/chronos/dashboards/*.json), every panel query must name only metrics from
tests/deploy/metric_names.txt (histograms may use their _bucket/_sum/_count
series), use only labels those metrics carry, and use the $datasource
variable. docs/metrics.md must document exactly the names in that file, each
with a type. Standard library only. Exits 1 and prints every failure.

Usage: check_dashboards.py [--root DIR] [DASHBOARD.json ...]
"""

import argparse
import glob
import json
import os
import re
import sys

# Labels Prometheus or the Kubernetes service discovery put on every target.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint", "node"}

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
    "increase", "irate", "label_join", "label_replace", "ln", "log2", "log10", "minute", "month",
    "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sort_by_label", "sort_by_label_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "mad_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad", "pi",
} | AGGREGATIONS
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "atan2", "inf", "nan"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:[smhdwy]|ms)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@])
""", re.VERBOSE)


class ParseError(Exception):
    pass


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN_RE.match(expr, pos)
        if not m:
            raise ParseError(f"cannot tokenize at {expr[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(kind)))
    return out


def analyse(expr):
    """Return (selectors, grouping_labels, functions) for a PromQL expression.

    selectors: list of (metric_name, [label names in its matcher]).
    grouping_labels: labels named in by/without/on/ignoring/group_* clauses.
    functions: function and aggregation names called.
    """
    toks = tokenize(expr)
    selectors, grouping, functions = [], [], []
    i, n = 0, len(toks)
    while i < n:
        kind, val = toks[i]
        nxt = toks[i + 1] if i + 1 < n else (None, None)
        if kind == "op" and val == "[":          # range or subquery duration
            depth = 1
            i += 1
            while i < n and depth:
                if toks[i] == ("op", "["):
                    depth += 1
                elif toks[i] == ("op", "]"):
                    depth -= 1
                i += 1
            continue
        if kind == "op" and val == "{":          # selector without a name
            labels, i = read_matchers(toks, i)
            if "__name__" in labels:
                raise ParseError("__name__ matchers cannot be checked; name the metric")
            selectors.append((None, labels))
            continue
        if kind == "ident":
            low = val.lower()
            if low in LABEL_LIST_KEYWORDS and nxt == ("op", "("):
                j = i + 2
                while j < n and toks[j] != ("op", ")"):
                    if toks[j][0] == "ident":
                        grouping.append(toks[j][1])
                    j += 1
                i = j + 1
                continue
            if low == "offset":
                i += 2
                continue
            if low in KEYWORDS:
                i += 1
                continue
            if val in AGGREGATIONS and nxt[0] == "ident" and nxt[1].lower() in ("by", "without"):
                functions.append(val)              # sum by (x) (...)
                i += 1
                continue
            if nxt == ("op", "("):
                if val not in FUNCTIONS:
                    raise ParseError(f"unknown function {val!r}")
                functions.append(val)
                i += 1
                continue
            labels = []
            i += 1
            if i < n and toks[i] == ("op", "{"):
                labels, i = read_matchers(toks, i)
            if "__name__" in labels:
                raise ParseError("__name__ matchers cannot be checked; name the metric")
            selectors.append((val, labels))
            continue
        i += 1
    return selectors, grouping, functions


def read_matchers(toks, i):
    """toks[i] is '{'; return (label names, index after the closing '}')."""
    labels = []
    i += 1
    while i < len(toks) and toks[i] != ("op", "}"):
        kind, val = toks[i]
        if kind == "ident" and i + 1 < len(toks) and toks[i + 1][1] in ("=", "!=", "=~", "!~"):
            labels.append(val)
        i += 1
    if i >= len(toks):
        raise ParseError("unclosed '{'")
    return labels, i + 1


def load_names(path):
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                names.append(line)
    return names


def load_docs(path):
    """Parse the metric tables of docs/metrics.md: {name: (type, set(labels))}."""
    docs = {}
    row = re.compile(r"^\|\s*`((?:chronos|process|grpc_server)_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|")
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = row.match(line)
            if m:
                name, mtype, labels = m.group(1), m.group(2), m.group(3)
                docs[name] = (mtype, set(re.findall(r"`([A-Za-z_]+)`", labels)))
    return docs


class Checker:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
        return ok


def resolve(name, docs):
    """Map a series name to its documented family, or None."""
    if name in docs:
        return name
    for suffix, types in (("_bucket", {"histogram"}), ("_sum", {"histogram", "summary"}),
                          ("_count", {"histogram", "summary"})):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in docs and docs[base][0] in types:
                return base
    return None


def check_expr(c, where, expr, docs):
    try:
        selectors, grouping, functions = analyse(expr)
    except ParseError as e:
        c.check(False, f"{where}: cannot parse {expr!r}: {e}")
        return
    if not c.check(bool(selectors), f"{where}: query names no metric: {expr!r}"):
        return
    allowed_grouping = set(TARGET_LABELS)
    for name, labels in selectors:
        if name is None:
            c.check(False, f"{where}: selector without a metric name in {expr!r}")
            continue
        family = resolve(name, docs)
        if not c.check(family is not None,
                       f"{where}: metric {name!r} is not in tests/deploy/metric_names.txt / docs/metrics.md"):
            continue
        allowed = docs[family][1] | TARGET_LABELS
        if name.endswith("_bucket"):
            allowed = allowed | {"le"}
        allowed_grouping |= allowed
        for label in labels:
            c.check(label in allowed, f"{where}: {name} has no label {label!r} (documented: "
                    f"{sorted(docs[family][1]) or 'none'})")
    for label in grouping:
        c.check(label in allowed_grouping, f"{where}: grouping label {label!r} is carried by no metric in {expr!r}")
    if "histogram_quantile" in functions and any(f in AGGREGATIONS for f in functions):
        c.check("le" in grouping, f"{where}: histogram_quantile over an aggregation that drops 'le': {expr!r}")
    # `job` is Prometheus' scrape job: the training job is `chronos_job`.
    c.check(re.search(r'(?<![A-Za-z0-9_])job\s*(=~|=|!=|!~)\s*"\$\{?job', expr) is None,
            f"{where}: matches the scrape label `job` against $job; the training job is `chronos_job`: {expr!r}")


def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def ds_ok(ds):
    if isinstance(ds, dict):
        return ds.get("uid") in ("${datasource}", "$datasource")
    return ds in ("${datasource}", "$datasource")


def check_dashboard(c, path, docs):
    rel = os.path.relpath(path)
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        c.check(False, f"{rel}: not valid JSON: {e}")
        return
    c.check(dash.get("schemaVersion") == 39, f"{rel}: schemaVersion is {dash.get('schemaVersion')!r}, want 39")
    c.check(bool(dash.get("uid")) and bool(dash.get("title")), f"{rel}: uid and title are required")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    dsv = variables.get("datasource")
    c.check(dsv is not None and dsv.get("type") == "datasource" and dsv.get("query") == "prometheus",
            f"{rel}: needs a 'datasource' template variable of type datasource with query 'prometheus'")
    for name in ("job", "stage"):
        c.check(name in variables, f"{rel}: missing template variable ${name}")
    job = variables.get("job", {})
    job_q = job.get("query")
    job_q = job_q.get("query") if isinstance(job_q, dict) else job_q
    c.check(job_q == "label_values(chronos_worker_iterations_total, chronos_job)",
            f"{rel}: $job must be label_values(chronos_worker_iterations_total, chronos_job), is {job_q!r}")
    for name, v in variables.items():
        if v.get("type") != "query":
            continue
        c.check(ds_ok(v.get("datasource")), f"{rel}: variable ${name} must use the $datasource variable")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q or "")
        if not c.check(m is not None, f"{rel}: variable ${name}: expected label_values(METRIC, LABEL), got {q!r}"):
            continue
        check_expr(c, f"{rel}: variable ${name}", m.group(1), docs)
        sel = analyse(m.group(1))[0]
        family = resolve(sel[0][0], docs) if sel and sel[0][0] else None
        if family:
            c.check(m.group(2) in docs[family][1] | TARGET_LABELS,
                    f"{rel}: variable ${name}: {family} has no label {m.group(2)!r}")

    ids = []
    n_queries = 0
    for p in iter_panels(dash.get("panels")):
        ptype = p.get("type")
        title = p.get("title", "?")
        where = f"{rel}: panel {title!r}"
        ids.append(p.get("id"))
        c.check(isinstance(p.get("gridPos"), dict), f"{where}: gridPos missing")
        if ptype in ("row", "text", "news", "dashlist"):
            continue
        c.check(ds_ok(p.get("datasource")), f"{where}: panel datasource must be the $datasource variable")
        targets = p.get("targets") or []
        exprs = [t for t in targets if (t.get("expr") or "").strip()]
        c.check(bool(exprs), f"{where}: has no query")
        for t in targets:
            expr = (t.get("expr") or "").strip()
            if not expr:
                c.check(bool(t.get("hide")), f"{where}: target {t.get('refId')} has an empty expr")
                continue
            n_queries += 1
            c.check(ds_ok(t.get("datasource", p.get("datasource"))),
                    f"{where}: target {t.get('refId')} must use the $datasource variable")
            check_expr(c, f"{where} [{t.get('refId')}]", expr, docs)
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    c.check(not dup, f"{rel}: duplicate panel ids {dup}")
    c.check(n_queries > 0, f"{rel}: no queries at all")
    print(f"  {rel}: {len(ids)} panels, {n_queries} queries")


def self_test(c):
    """The extractor must see what a reader sees; guard it with known cases."""
    cases = [
        ('histogram_quantile(0.9, sum by (job, le) (rate(a_seconds_bucket{job=~"$job", stage="1"}[$__rate_interval])))',
         [("a_seconds_bucket", ["job", "stage"])], ["job", "le"]),
        ('sum(rate(x_total[5m] offset 1h)) by (kind) / on (job) group_left y', [("x_total", []), ("y", [])],
         ["kind", "job"]),
        ('x != x or abs(x) == Inf', [("x", []), ("x", []), ("x", [])], []),
        ('max by (instance, version) (info{version!~"dev.*"}) > bool 0', [("info", ["version"])],
         ["instance", "version"]),
    ]
    for expr, want_sel, want_group in cases:
        try:
            sel, grp, _ = analyse(expr)
        except ParseError as e:
            c.check(False, f"self-test: {expr!r} failed to parse: {e}")
            continue
        c.check(sel == want_sel and grp == want_group,
                f"self-test: {expr!r} gave {sel} / {grp}, want {want_sel} / {want_group}")
    for bad in ('rat(x[5m])', 'x{__name__=~"a.*"}', 'x{job="a"'):
        try:
            analyse(bad)
            c.check(False, f"self-test: {bad!r} should not parse")
        except ParseError:
            c.check(True, "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("dashboards", nargs="*")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    os.chdir(root)
    c = Checker()

    self_test(c)

    names_path = os.path.join("tests", "deploy", "metric_names.txt")
    names = load_names(names_path)
    docs = load_docs(os.path.join("docs", "metrics.md"))
    c.check(len(names) == len(set(names)), f"{names_path}: duplicate names")
    for name in names:
        # process_*, grpc_server_*: the ecosystem's standard names, kept as they are.
        c.check(re.fullmatch(r"chronos_(worker|coordinator)_[a-z0-9_]+|process_[a-z_]+|grpc_server_[a-z_]+", name)
                is not None,
                f"{names_path}: {name!r} does not follow chronos_<component>_<thing> (or process_*, grpc_server_*)")
        c.check(name in docs, f"docs/metrics.md does not document {name}")
    for name, (mtype, _) in docs.items():
        c.check(name in names, f"docs/metrics.md documents {name}, which is not in {names_path}")
        c.check(mtype in ("counter", "gauge", "histogram", "summary"), f"docs/metrics.md: {name}: bad type {mtype!r}")
        c.check((mtype == "counter") == name.endswith("_total"),
                f"docs/metrics.md: {name}: counters and only counters end in _total")

    dashboards = args.dashboards or sorted(glob.glob("deploy/grafana/dashboards/*.json")
                                          + glob.glob("helm/chronos/dashboards/*.json"))
    c.check(bool(dashboards), "no dashboards found")
    for path in dashboards:
        check_dashboard(c, path, docs)

    for f in c.failures:
        print(f"FAIL: {f}")
    print(f"{c.passed} passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())

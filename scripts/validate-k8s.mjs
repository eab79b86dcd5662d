#!/usr/bin/env node
// Validate Kubernetes manifests without a cluster.
//
//   NODE_PATH=<dir with node_modules> node scripts/validate-k8s.mjs FILE.yaml...
//
// Each YAML document is checked with the matching kubernetes-models class
// (the Kubernetes OpenAPI schema: types, required fields, enums, formats) and,
// like `kubeconform -strict`, for fields the API does not have (typos such as
// `readinesProbe`), by walking the models' type declarations. Needs the npm
// packages kubernetes-models, @kubernetes-models/prometheus-operator and
// js-yaml; scripts/check-deploy.sh installs them into a temporary directory.
// Exits 1 if any document fails.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const searchDirs = (process.env.NODE_PATH || "").split(path.delimiter).filter(Boolean);
const require = createRequire(path.join(searchDirs[0] || process.cwd(), "noop.js"));
const yaml = require("js-yaml");

// apiVersion -> [package, subpath] of the kubernetes-models module.
function modulePath(apiVersion) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") return ["@kubernetes-models/prometheus-operator", `${group}/${version}`];
  if (group === "") return ["kubernetes-models", version];
  return ["kubernetes-models", `${group}/${version}`];
}

// Directory that holds a package (resolved through NODE_PATH).
function packageDir(pkg) {
  for (const dir of searchDirs) {
    const p = path.join(dir, pkg);
    if (fs.existsSync(path.join(p, "package.json"))) return p;
  }
  throw new Error(`package ${pkg} not found in NODE_PATH`);
}

// ---- strict field check over the .d.ts declarations -----------------------
const declCache = new Map();

// Parse the first interface of a .d.ts: {prop: {type, importFile}} or null.
function parseDecl(file) {
  if (declCache.has(file)) return declCache.get(file);
  let result = null;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(m[1], m[2]);
    const start = text.search(/^export interface \w+( extends [\w, ]+)? \{$/m);
    if (start >= 0) {
      result = {};
      const body = text.slice(start).split("\n");
      for (let i = 1; i < body.length && body[i] !== "}"; i++) {
        const m = body[i].match(/^ {4}"([^"]+)"\??: (.*?);?$/);
        if (!m) continue;
        const [, name, type] = m;
        const ref = (type.match(/\b(I[A-Z]\w+)\b/) || [])[1];
        let importFile = null;
        if (ref && imports.has(ref)) {
          const spec = imports.get(ref);
          importFile = spec.startsWith(".")
            ? path.resolve(path.dirname(file), spec.replace(/\.js$/, ".d.ts"))
            : resolvePackageFile(spec);
        }
        result[name] = { type, importFile };
      }
    }
  }
  declCache.set(file, result);
  return result;
}

function resolvePackageFile(spec) {
  const parts = spec.split("/");
  const pkg = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  const rest = parts.slice(pkg.split("/").length).join("/");
  return path.join(packageDir(pkg), `${rest}.d.ts`);
}

function strictCheck(value, declFile, where, errors) {
  const decl = parseDecl(declFile);
  if (!decl || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => strictCheck(v, declFile, `${where}[${i}]`, errors));
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const prop = decl[key];
    if (!prop) {
      errors.push(`${where}.${key}: unknown field (not in ${path.basename(declFile, ".d.ts")})`);
      continue;
    }
    if (prop.importFile && v !== null && typeof v === "object") strictCheck(v, prop.importFile, `${where}.${key}`, errors);
  }
}

// ---- main -------------------------------------------------------------------
let failed = 0;
let passed = 0;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d !== null && d !== undefined);
  } catch (e) {
    console.log(`FAIL ${file}: YAML: ${e.message}`);
    failed++;
    continue;
  }
  for (const doc of docs) {
    const id = `${file}: ${doc.kind || "?"}/${(doc.metadata && doc.metadata.name) || "?"}`;
    if (!doc.apiVersion || !doc.kind) {
      console.log(`FAIL ${id}: apiVersion and kind are required`);
      failed++;
      continue;
    }
    if (doc.apiVersion.startsWith("kustomize.config.k8s.io/")) continue; // not an API object
    const [pkg, sub] = modulePath(doc.apiVersion);
    const modFile = path.join(packageDir(pkg), sub, `${doc.kind}.js`);
    if (!fs.existsSync(modFile)) {
      console.log(`FAIL ${id}: unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
      failed++;
      continue;
    }
    const mod = await import(pathToFileURL(modFile).href);
    const Model = mod[doc.kind];
    const errors = [];
    try {
      new Model(doc).validate();
    } catch (e) {
      errors.push(e.message);
    }
    strictCheck(doc, modFile.replace(/\.js$/, ".d.ts"), doc.kind, errors);
    if (errors.length) {
      failed++;
      console.log(`FAIL ${id}`);
      for (const e of errors) console.log(`    ${e}`);
    } else {
      console.log(`ok   ${id}`);
      passed++;
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

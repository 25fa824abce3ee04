#!/usr/bin/env node
// Extracts the facts the simulator is held against from a checkout of xapi-project/xen-api:
// class, field and message names with parameter names and types (from the generated
// doc/data/xenapi.json) and error codes with their parameter names (from
// ocaml/idl/datamodel_errors.ml + ocaml/xapi-consts/api_errors.ml). Facts only: no prose.
//
//   node scripts/extract-datamodel.mjs <xen-api git dir> [commit] > fixtures/xapi-datamodel.json
import { execFileSync } from "node:child_process";

const [gitDir, commitArg = "HEAD"] = process.argv.slice(2);
if (!gitDir) {
  console.error("usage: extract-datamodel.mjs <xen-api git dir> [commit]");
  process.exit(2);
}
const git = (...args) => execFileSync("git", ["--git-dir", gitDir, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
const commit = git("rev-parse", commitArg).trim();
const show = (path) => git("show", `${commit}:${path}`);

// The classes the simulator models; the rest of XAPI is out of its scope.
const CLASSES = ["session", "task", "event", "pool", "host", "host_metrics", "VM", "VM_metrics", "VDI", "VBD", "SR", "PBD", "VIF", "network"];

const model = JSON.parse(show("doc/data/xenapi.json"));
const classes = {};
for (const cls of model) {
  if (!CLASSES.includes(cls.name)) continue;
  const fields = {};
  for (const f of cls.fields) fields[f.name] = { type: f.type, qualifier: f.qualifier };
  const messages = {};
  for (const m of cls.messages) {
    // Overloads (same name, other arity) exist in XAPI; keep every signature.
    const signature = { params: m.params.map((p) => ({ name: p.name, type: p.type })), result: m.result[0] };
    (messages[m.name] ??= []).push(signature);
  }
  const enums = {};
  for (const e of cls.enums ?? []) enums[e.name] = e.values.map((v) => v.name);
  classes[cls.name] = { fields, messages, enums };
}

// api_errors.ml: let vm_bad_power_state = add_error "VM_BAD_POWER_STATE"
const codeOf = new Map();
for (const m of show("ocaml/xapi-consts/api_errors.ml").matchAll(/let\s+(\w+)\s*=\s*add_error\s+"([A-Z0-9_]+)"/g)) {
  codeOf.set(m[1], m[2]);
}
// datamodel_errors.ml: error Api_errors.vm_bad_power_state ["vm"; "expected"; "actual"]
// Codes XAPI raises but datamodel_errors.ml does not document (e.g. VM_IS_SNAPSHOT) keep params null.
const errors = Object.fromEntries([...codeOf.values()].map((code) => [code, null]));
const src = show("ocaml/idl/datamodel_errors.ml");
for (const m of src.matchAll(/error\s+Api_errors\.(\w+)\s*\[([^\]]*)\]/g)) {
  const code = codeOf.get(m[1]);
  if (!code) continue;
  errors[code] = [...m[2].matchAll(/"([^"]*)"/g)].map((p) => p[1]);
}

const out = {
  source: {
    repository: "https://github.com/xapi-project/xen-api",
    commit,
    files: ["doc/data/xenapi.json", "ocaml/idl/datamodel_errors.ml", "ocaml/xapi-consts/api_errors.ml"],
    extractedBy: "packages/xapi-simulator/scripts/extract-datamodel.mjs",
  },
  classes,
  errors: Object.fromEntries(Object.entries(errors).sort(([a], [b]) => a.localeCompare(b))),
};
process.stdout.write(JSON.stringify(out, null, 1) + "\n");

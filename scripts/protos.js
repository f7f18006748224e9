#!/usr/bin/env node
'use strict';
/**
 * TypeScript types of the image messages, generated from the .proto files (the one source of
 * truth). Every workspace package with a proto/ directory gets src/generated/<name>.ts for each
 * proto/<name>.proto, in amber codec's conventions: 64-bit integers are bigint, other numbers
 * number, bytes Buffer, enums their numbers (the enum is also emitted as a const object),
 * repeated fields always arrays, optional fields optional.
 *
 *   node scripts/protos.js           writes the files (npm run protos)
 *   node scripts/protos.js --check   lists the files that differ and exits 1
 */
const fs = require('node:fs');
const path = require('node:path');
const REPO = path.resolve(__dirname, '..');
// the core's own protobufjs (its dependency), the one its codec decodes with
const protobuf = require(require.resolve('protobufjs', { paths: [path.join(REPO, 'core')] }));

const CORE_PROTO = path.join(REPO, 'core', 'proto');

/** Workspace packages holding .proto files: { name, dir }. */
function packagesWithProtos() {
  const workspaces = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).workspaces;
  return workspaces
    .map((w) => path.join(REPO, w))
    .filter((dir) => fs.existsSync(path.join(dir, 'proto')))
    .map((dir) => ({ name: JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name, dir }));
}

const LONG = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const NUMBER = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'double', 'float']);

function scalarType(type) {
  if (LONG.has(type)) return 'bigint';
  if (NUMBER.has(type)) return 'number';
  if (type === 'bool') return 'boolean';
  if (type === 'string') return 'string';
  if (type === 'bytes') return 'Buffer';
  return undefined;
}

/** A type's TypeScript name: its name, after those of the messages it is nested in. */
function tsName(obj) {
  let name = obj.name;
  for (let p = obj.parent; p instanceof protobuf.Type; p = p.parent) name = p.name + name;
  return name;
}

function docLines(comment, indent) {
  if (!comment) return [];
  const lines = comment.split('\n').map((l) => l.trim()).filter((l, i, a) => l || (i > 0 && i < a.length - 1));
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => `${indent} *${l ? ' ' + l : ''}`), `${indent} */`];
}

function load(file) {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (path.isAbsolute(target)) return target;
    const beside = origin ? path.resolve(path.dirname(origin), target) : path.resolve(target);
    if (fs.existsSync(beside)) return beside;
    const builtin = path.join(CORE_PROTO, target);
    return fs.existsSync(builtin) ? builtin : beside;
  };
  root.loadSync(file, { keepCase: false, alternateCommentMode: true });
  root.resolveAll();
  return root;
}

function definedIn(root, file) {
  const out = [];
  const walk = (ns) => {
    for (const obj of ns.nestedArray) {
      if ((obj instanceof protobuf.Type || obj instanceof protobuf.Enum) && obj.filename === file) out.push(obj);
      if (obj instanceof protobuf.Namespace) walk(obj);
    }
  };
  walk(root);
  return out;
}

/** The generated TypeScript of one .proto file of package `pkg`. */
function generate(file, pkg, packages) {
  const root = load(file);
  const objs = definedIn(root, file);
  const imports = new Map(); // module -> Set of names
  const importFrom = (type) => {
    if (type.filename === file) return;
    const owner = packages.find((p) => type.filename.startsWith(path.join(p.dir, 'proto') + path.sep));
    if (!owner) throw new Error(`${file}: ${type.fullName} comes from ${type.filename}, outside every package's proto/`);
    const mod = owner.name === pkg.name ? `./${path.basename(type.filename, '.proto')}` : owner.name;
    if (!imports.has(mod)) imports.set(mod, new Set());
    imports.get(mod).add(tsName(type));
  };
  const body = [];
  for (const obj of objs) {
    body.push('');
    body.push(...docLines(obj.comment, ''));
    if (obj instanceof protobuf.Enum) {
      body.push(`export const ${tsName(obj)} = {`);
      for (const [k, v] of Object.entries(obj.values)) {
        body.push(...docLines(obj.comments[k], '  '));
        body.push(`  ${k}: ${v},`);
      }
      body.push('} as const;');
      continue;
    }
    body.push(`export interface ${tsName(obj)} {`);
    for (const f of obj.fieldsArray) {
      const rt = f.resolvedType;
      let t;
      let note = f.comment;
      if (rt instanceof protobuf.Type) {
        importFrom(rt);
        t = tsName(rt);
      } else if (rt instanceof protobuf.Enum) {
        t = 'number';
        note = note ? `${note}\n(${tsName(rt)})` : tsName(rt);
      } else {
        t = scalarType(f.type);
        if (!t) throw new Error(`${file}: ${obj.fullName}.${f.name} has type ${f.type}, which the generator does not know`);
      }
      body.push(...docLines(note, '  '));
      if (f.repeated) body.push(`  ${f.name}: ${t}[];`);
      else body.push(`  ${f.name}${f.required ? '' : '?'}: ${t};`);
    }
    body.push('}');
  }
  const rel = path.relative(REPO, file);
  const head = [`// Generated from ${rel} by \`npm run protos\` (scripts/protos.js): do not edit.`];
  for (const mod of [...imports.keys()].sort()) head.push(`import type { ${[...imports.get(mod)].sort().join(', ')} } from '${mod}';`);
  return head.concat(body).join('\n') + '\n';
}

/** Every .proto of every package with the path of its generated file and what it should hold. */
function outputs() {
  const packages = packagesWithProtos();
  const out = [];
  for (const pkg of packages) {
    const protoDir = path.join(pkg.dir, 'proto');
    for (const name of fs.readdirSync(protoDir).filter((n) => n.endsWith('.proto')).sort()) {
      const file = path.join(protoDir, name);
      out.push({ proto: file, target: path.join(pkg.dir, 'src', 'generated', name.replace(/\.proto$/, '.ts')), text: generate(file, pkg, packages) });
    }
    const names = fs.readdirSync(protoDir).filter((n) => n.endsWith('.proto')).sort().map((n) => n.replace(/\.proto$/, ''));
    const index = [`// Generated by \`npm run protos\` (scripts/protos.js): do not edit.`, ...names.map((n) => `export * from './${n}';`)];
    out.push({ proto: protoDir, target: path.join(pkg.dir, 'src', 'generated', 'index.ts'), text: index.join('\n') + '\n' });
  }
  return out;
}

/**
 * Generated files that differ from what their .proto gives now: changed, missing, or left over
 * from a .proto that is gone (text null).
 */
function stale() {
  const all = outputs();
  const out = all.filter((o) => !fs.existsSync(o.target) || fs.readFileSync(o.target, 'utf8') !== o.text);
  const dirs = new Set(all.map((o) => path.dirname(o.target)));
  for (const dir of dirs) {
    for (const n of fs.readdirSync(dir)) {
      const target = path.join(dir, n);
      if (!all.some((o) => o.target === target)) out.push({ proto: path.join(path.dirname(path.dirname(dir)), 'proto', n.replace(/\.ts$/, '.proto')), target, text: null });
    }
  }
  return out;
}

module.exports = { outputs, stale, generate };

if (require.main === module) {
  if (process.argv.includes('--check')) {
    const bad = stale();
    for (const o of bad) {
      const why = o.text === null ? `left over: ${path.relative(REPO, o.proto)} is gone` : `out of date with ${path.relative(REPO, o.proto)}`;
      console.error(`${path.relative(REPO, o.target)} is ${why} (npm run protos)`);
    }
    process.exit(bad.length ? 1 : 0);
  }
  for (const o of outputs()) {
    fs.mkdirSync(path.dirname(o.target), { recursive: true });
    if (!fs.existsSync(o.target) || fs.readFileSync(o.target, 'utf8') !== o.text) {
      fs.writeFileSync(o.target, o.text);
      console.log(`wrote ${path.relative(REPO, o.target)}`);
    }
  }
}

/**
 * The one protobufjs Root every image schema is loaded into, so a plugin's .proto can import
 * amber's own (e.g. `import "files.proto";` for FownEntry).
 *
 * Parsing .proto text cost a short command more than the work (~120 ms for amber's 29 files,
 * under load). `npm run build` therefore writes beside each built-in X.proto a descriptor,
 * X.proto.json: protobufjs's JSON of what X itself defines, its imports, and a hash of the text
 * it came from. A descriptor whose hash does not match the .proto (edited since the build) is
 * ignored and the text is parsed, as it is for a plugin's .proto that has none.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import Long from 'long';

// 64-bit fields must decode to Long (exact), never to a lossy number.
protobuf.util.Long = Long;
protobuf.configure();

/*
 * Each message type's constructor, made when its fields are resolved. protobufjs writes each as
 * source text for new Function, which V8 parses and compiles anew at every start (no code cache
 * holds it): ~5 ms of a command's loading of amber's ~100 message types. A closure over the same
 * field lists builds the same objects: mutable members (maps, repeated) made per instance, then
 * the given properties that are set.
 */
type Constructor = new (properties?: Record<string, unknown>) => object;
(protobuf.Type as unknown as { generateConstructor: (t: protobuf.Type) => () => Constructor }).generateConstructor = (mtype) => {
  const maps = mtype.fieldsArray.filter((f) => f.map).map((f) => f.name);
  const lists = mtype.fieldsArray.filter((f) => !f.map && f.repeated).map((f) => f.name);
  return () => {
    function Message(this: Record<string, unknown>, p?: Record<string, unknown>): void {
      for (const name of maps) this[name] = {};
      for (const name of lists) this[name] = [];
      if (p) for (const k of Object.keys(p)) if (p[k] != null && k !== '__proto__') this[k] = p[k];
    }
    Object.defineProperty(Message, 'name', { value: mtype.name });
    return Message as unknown as Constructor;
  };
};

/** Directory holding amber's built-in .proto files. */
export const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');

export const schemaRoot = new protobuf.Root();
schemaRoot.resolvePath = (origin: string, target: string): string => {
  if (path.isAbsolute(target)) return target;
  const beside = origin ? path.resolve(path.dirname(origin), target) : path.resolve(target);
  if (fs.existsSync(beside)) return beside;
  const builtin = path.join(PROTO_DIR, target);
  return fs.existsSync(builtin) ? builtin : beside;
};

interface Descriptor {
  /** protoHash of the .proto text described */
  hash: string;
  /** the file's import statements, as written */
  imports: string[];
  /** protobufjs JSON (Namespace.nested) of the types and enums the file defines */
  nested: protobuf.INamespace['nested'];
}

/** FNV-1a (32 bits) and the length of the text: enough to see an edit since the build. */
function protoHash(text: Buffer): string {
  let h = 0x811c9dc5;
  // an index, not for...of: amber runs without TurboFan (--no-opt), and the interpreter's
  // iterator protocol made this loop over amber's ~48 KB of .proto text cost ~5-10 ms a start
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text[i], 0x01000193) >>> 0;
  return `${text.length}:${h.toString(16)}`;
}

const IMPORT = /^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm;

function importsOf(text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => m[1]);
}

/**
 * The file's descriptor if it has one made from its present text. A descriptor written after the
 * .proto last changed, of the .proto's length, is taken as it is; otherwise the text is hashed
 * (reading and hashing amber's ~20 files cost each start a few ms).
 */
function currentDescriptor(file: string): Descriptor | undefined {
  let d: Descriptor;
  let descriptorTime: number;
  try {
    const text = fs.readFileSync(`${file}.json`, 'utf8');
    descriptorTime = fs.statSync(`${file}.json`).mtimeMs;
    d = JSON.parse(text) as Descriptor;
  } catch {
    return undefined;
  }
  const proto = fs.statSync(file, { throwIfNoEntry: false });
  if (!proto) return undefined;
  if (proto.mtimeMs <= descriptorTime && d.hash.startsWith(`${proto.size}:`)) return d;
  return d.hash === protoHash(fs.readFileSync(file)) ? d : undefined;
}

/**
 * Whether `file` has a descriptor made from its present text that defines message `name` itself
 * (e.g. 'amber.TtyInfoEntry'): then the message is known to load, and loading can wait for its
 * first use.
 */
export function describesMessage(file: string, name: string): boolean {
  const d = currentDescriptor(file);
  let ns: protobuf.INamespace['nested'] = d?.nested;
  const parts = name.split('.');
  for (let i = 0; ns && i < parts.length; i++) {
    const obj = ns[parts[i]] as protobuf.AnyNestedObject | undefined;
    if (!obj) return false;
    if (i === parts.length - 1) return 'fields' in obj;
    ns = (obj as protobuf.INamespace).nested;
  }
  return false;
}

/** Whether `file` loads from its descriptor (made from its present text) or from the text. */
export function schemaSource(file: string): 'descriptor' | 'text' {
  return currentDescriptor(file) ? 'descriptor' : 'text';
}

/**
 * Adds the file and what it imports to `root` (whose resolvePath finds imports), from its
 * descriptor or by parsing it; resolveAll is the caller's.
 */
export function addSchemaFile(root: protobuf.Root, file: string): void {
  // protobufjs's own loader skips what is in root.files: a file added from a descriptor counts
  if (root.files.includes(file)) return;
  const d = currentDescriptor(file);
  if (!d) {
    root.loadSync(file, { keepCase: false });
    return;
  }
  root.files.push(file);
  for (const imp of d.imports) addSchemaFile(root, root.resolvePath(file, imp) ?? imp);
  if (d.nested) root.addJSON(d.nested);
}

/** Loads a .proto file into schemaRoot with everything it imports, and resolves its types. */
export function loadSchemaFile(file: string): void {
  if (schemaRoot.files.includes(file)) return;
  addSchemaFile(schemaRoot, file);
  schemaRoot.resolveAll();
}

/** JSON of what `file` itself defines, from a root it was loaded into (nested in its namespaces). */
function definedIn(ns: protobuf.Namespace, file: string): Record<string, protobuf.AnyNestedObject> | undefined {
  const out: Record<string, protobuf.AnyNestedObject> = {};
  for (const obj of ns.nestedArray) {
    if ((obj instanceof protobuf.Type || obj instanceof protobuf.Enum) && obj.filename === file) out[obj.name] = obj.toJSON();
    else if (obj instanceof protobuf.Namespace && !(obj instanceof protobuf.Type)) {
      const inner = definedIn(obj, file);
      if (inner) out[obj.name] = { nested: inner };
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/** The descriptor of a .proto file (the build writes it to `${file}.json`). */
export function describeSchemaFile(file: string): string {
  const text = fs.readFileSync(file);
  const root = new protobuf.Root();
  root.resolvePath = schemaRoot.resolvePath;
  root.loadSync(file, { keepCase: false });
  root.resolveAll();
  const d: Descriptor = { hash: protoHash(text), imports: importsOf(text.toString('utf8')), nested: definedIn(root, file) };
  return `${JSON.stringify(d)}\n`;
}

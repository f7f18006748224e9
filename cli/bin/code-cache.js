'use strict';
/**
 * Keeps V8's compiled code for the CommonJS modules amber loads, between runs. amber is a short
 * command whose start-up is mostly compiling ~330 modules (oclif, protobufjs, tsyringe, amber's
 * own), and node 20 has no module.enableCompileCache (22 has).
 *
 * One file per user, installation and set of node flags,
 * ~/.cache/amber/code-<node version>-<arch>-<hash of this directory and the flags>.bin: an index
 * (JSON) of filename (the one-file build's with its command: entryKey) -> [offset, length, mtime,
 * size] and the cached data after it. A start reads
 * the index and the data of the modules it compiles. Per installation, since a run that compiled
 * anything writes the file whole again (one file shared by several checkouts had grown to 11 MB,
 * ~3000 modules, of which a run used ~370). An entry whose file changed is ignored; V8 itself rejects
 * data made by another V8 or from other flags. The cache is read only from a directory owned by
 * this user and closed to others, since code from it runs.
 * Written at exit, only when some module (or the one-file build, for this command) was compiled
 * without it. AMBER_CODE_CACHE=0 turns it off.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const BUNDLE = path.join('cli', 'dist', 'amber.js');
/** Commands whose code the cache keeps for the one-file build (~0.6-1.4 MB each). */
const MAX_COMMANDS = 8;

function cacheDir() {
  const dir = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'amber');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  const uid = process.getuid ? process.getuid() : st.uid;
  if (st.uid !== uid || (st.mode & 0o022) !== 0) return undefined;
  return dir;
}

/** The cache's index: filename -> where its data lies in the file, and the mtime and size it was made from. */
function readIndex(file) {
  const index = new Map();
  let fd;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return index;
  }
  try {
    const len = Buffer.alloc(4);
    if (fs.readSync(fd, len, 0, 4, 0) < 4) return index;
    const indexLength = len.readUInt32LE(0);
    if (4 + indexLength > fs.fstatSync(fd).size) return index;
    const head = Buffer.alloc(indexLength);
    if (fs.readSync(fd, head, 0, head.length, 4) < head.length) return index;
    const base = 4 + head.length;
    for (const [filename, [offset, length, mtime, size]] of Object.entries(JSON.parse(head.toString('utf8')))) {
      index.set(filename, { file, at: base + offset, length, mtime, size });
    }
  } catch {
    // a damaged index: as if there were no cache (the run's exit writes a new one)
    index.clear();
  } finally {
    fs.closeSync(fd);
  }
  return index;
}

/**
 * One module's cached data, read when it is compiled: a run uses a few of the entries, and the
 * whole file held for the run's length (~1.4 MB) counted in every command's peak RSS.
 */
function dataOf(e) {
  if (e.data) return e.data;
  const data = Buffer.alloc(e.length);
  const fd = fs.openSync(e.file, 'r');
  try {
    if (fs.readSync(fd, data, 0, e.length, e.at) < e.length) throw new Error(`${e.file}: short`);
  } finally {
    fs.closeSync(fd);
  }
  return data;
}

function cachedDataOf(e) {
  try {
    return dataOf(e);
  } catch {
    return undefined;
  }
}

/** Every entry whose data is there, for a rewrite of the cache (a cut-short file loses the rest). */
function readCache(file) {
  const entries = readIndex(file);
  for (const [filename, e] of entries) {
    e.data = cachedDataOf(e);
    if (!e.data) entries.delete(filename);
  }
  return entries;
}

function writeCache(file, entries) {
  const index = {};
  const parts = [];
  let offset = 0;
  for (const [filename, e] of entries) {
    // files gone since (another checkout, an old build) leave the cache when it is next written
    if (!fs.existsSync(filename.split('\0')[0])) continue;
    index[filename] = [offset, e.data.length, e.mtime, e.size];
    parts.push(e.data);
    offset += e.data.length;
  }
  const head = Buffer.from(JSON.stringify(index), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(head.length, 0);
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, Buffer.concat([len, head, ...parts]), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * Removes the cache files of other installations that are gone (a deleted checkout, an npx run's
 * temporary copy, a test's install): each kept its own file, and nothing else ever removed one
 * (54 files, 127 MB, in a developer's cache after a few days). An installation counts as gone
 * when the first file its index names is; a file with no readable index is of no use either.
 * Run when this installation's file is written, which is rare (a new build or command).
 */
function sweepGone(dir, keep) {
  for (const name of fs.readdirSync(dir)) {
    if (!/^code-.*\.bin$/.test(name) || name === path.basename(keep)) continue;
    const file = path.join(dir, name);
    const first = readIndex(file).keys().next().value;
    if (first !== undefined && fs.existsSync(first.split('\0')[0])) continue;
    try {
      fs.unlinkSync(file);
    } catch {
      // another run removed it first
    }
  }
}

/**
 * FNV-1a of this file's directory and node's flags: which installation of amber a cache belongs
 * to, and which flags (V8 rejects data made under other flags: `node run.js` and the command
 * itself, whose #! line adds flags, would overwrite each other's cache at every change).
 */
/**
 * Where a module's data is kept in the index: its filename, and for the one-file build also the
 * command, since the data holds the code of the functions the run that made it had compiled (V8
 * compiles a function on its first call). One made by `amber --help` left a later dump compiling
 * most of its code from source again, ~15% slower, for good (measured); each command now gets its
 * own, made by its first run.
 */
function entryKey(filename) {
  if (!filename.endsWith(BUNDLE)) return filename;
  const args = process.argv.slice(2);
  const word = args.find((a) => !a.startsWith('-')) ?? '';
  const help = args.some((a) => a === '--help' || a === '-h');
  return `${filename}\0${word}${help ? ' --help' : ''}`;
}

function installationHash() {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(`${__dirname}\0${process.execArgv.join(' ')}`)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** The `require` a module sees, as node builds it. */
function requireFor(mod) {
  const req = (id) => mod.require(id);
  req.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
  req.resolve.paths = (request) => Module._resolveLookupPaths(request, mod);
  req.main = process.mainModule;
  req.extensions = Module._extensions;
  req.cache = Module._cache;
  return req;
}

function install() {
  if (process.env.AMBER_CODE_CACHE === '0') return;
  let dir;
  try {
    dir = cacheDir();
  } catch {
    return;
  }
  if (!dir) return;
  const file = path.join(dir, `code-${process.version}-${process.arch}-${installationHash()}.bin`);
  let entries;
  try {
    entries = readIndex(file);
  } catch {
    entries = new Map();
  }
  /** Scripts compiled without usable data this run: their data is made at exit. */
  const fresh = new Map();

  const compile = Module.prototype._compile;
  Module.prototype._compile = function compileWithCache(content, filename) {
    // A vm.Script has a loader for import() only when given node's own (node >= 20.12), and on
    // node 20 it loses it again once compiled from cached data (ERR_VM_DYNAMIC_IMPORT_CALLBACK_
    // MISSING on the second run: oclif's getPlatform() imports wsl-utils). So a module that
    // calls import() is compiled by node itself, except the one-file build: there esbuild has
    // inlined every import() amber runs, and what is left loads ESM commands, which amber has none of.
    const dynamicImport = content.includes('import(') ? vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER : null;
    if (dynamicImport === undefined || (dynamicImport !== null && !filename.endsWith(BUNDLE))) return compile.call(this, content, filename);
    let stat;
    try {
      stat = fs.statSync(filename);
    } catch {
      stat = undefined;
    }
    const key = entryKey(filename);
    const known = stat && entries.get(key);
    const usable = known && known.mtime === stat.mtimeMs && known.size === stat.size;
    // a #! line is only valid at the very start of a script, and the wrapper comes first
    const source = content.startsWith('#!') ? `//${content.slice(2)}` : content;
    const data = usable ? cachedDataOf(known) : undefined;
    const script = new vm.Script(Module.wrap(source), {
      filename,
      cachedData: data,
      ...(dynamicImport ? { importModuleDynamically: dynamicImport } : {}),
    });
    if (stat && (!data || script.cachedDataRejected)) fresh.set(key, { script, mtime: stat.mtimeMs, size: stat.size });
    const wrapper = script.runInThisContext({ displayErrors: true });
    return wrapper.call(this.exports, this.exports, requireFor(this), this, filename, path.dirname(filename));
  };

  process.once('exit', () => {
    if (!fresh.size) return;
    try {
      // read again whole: another run may have rewritten it since
      const all = readCache(file);
      for (const [filename, f] of fresh) {
        all.delete(filename);
        all.set(filename, { data: f.script.createCachedData(), mtime: f.mtime, size: f.size });
      }
      // the one-file build's entries of the commands written longest ago go first (a mistyped
      // command makes one too)
      const commands = [...all.keys()].filter((k) => k.includes('\0'));
      for (const k of commands.slice(0, Math.max(0, commands.length - MAX_COMMANDS))) all.delete(k);
      writeCache(file, all);
      sweepGone(path.dirname(file), file);
    } catch {
      // a cache that cannot be written costs the next run its speed, nothing else
    }
  });
}

install();

/**
 * Entry of amber's one-file build (scripts/bundle.js: dist/amber.js holds the CLI, oclif,
 * @amber/core, the built-in plugins and their dependencies; koffi, native, stays a package).
 *
 * A plugin installed beside amber runs `require('@amber/core')` from its own directory. It must
 * get the core the bundle runs on, not a second copy from a node_modules (a second copy has its
 * own image registry and DI tokens: the plugin's images and services would be unknown to the
 * engine). So the bundle answers node's resolver for the packages it holds: their names resolve
 * to one id each, whose module-cache entry is the bundled module, created on first use. The same
 * answers the CLI's own lookups of the built-in plugins and oclif's load of the command table,
 * and the scan of the install's node_modules, which finds the built-in plugins' packages there by
 * the path of their main file (a checkout's node_modules has them). Other files of a package
 * ('@amber/core/dist/...') are not held and resolve as usual.
 */
import Module from 'node:module';
import * as path from 'node:path';

const held: Record<string, () => unknown> = {
  '@amber/core': () => require('@amber/core'),
  '@amber/plugin-mm': () => require('@amber/plugin-mm'),
  '@amber/plugin-fs': () => require('@amber/plugin-fs'),
  '@amber/plugin-unix': () => require('@amber/plugin-unix'),
  '@amber/plugin-net-tcp': () => require('@amber/plugin-net-tcp'),
  '@amber/plugin-tty': () => require('@amber/plugin-tty'),
  '@amber/plugin-ipc': () => require('@amber/plugin-ipc'),
  // package.json's oclif.commands target, relative to the CLI package
  [path.join(__dirname, 'commands', 'index.js')]: () => require('./commands'),
};

const ID_PREFIX = 'amber-bundle:';
const MAIN_IN_NODE_MODULES = /[/]node_modules[/](@amber[/][^/]+)[/]dist[/]index\.js$/;

function heldName(request: string): string | undefined {
  if (request.startsWith(ID_PREFIX)) return request.slice(ID_PREFIX.length);
  if (held[request]) return request;
  const main = MAIN_IN_NODE_MODULES.exec(request)?.[1];
  return main !== undefined && held[main] ? main : undefined;
}

interface ModuleInternals {
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
  _cache: Record<string, Module>;
}
const loader = Module as unknown as ModuleInternals;
const resolveFilename = loader._resolveFilename;
loader._resolveFilename = function resolveHeld(request: string, parent: unknown, isMain: boolean, options?: unknown): string {
  const name = heldName(request);
  if (name === undefined) return resolveFilename.call(this, request, parent, isMain, options);
  const id = ID_PREFIX + name;
  if (!loader._cache[id]) {
    const m = new Module(id);
    m.filename = id;
    m.exports = held[name]();
    m.loaded = true;
    loader._cache[id] = m;
  }
  return id;
};

export { main } from './main';

/** amber-criu's entry, loaded only when it runs: its modules (child_process among them) cost `amber` itself ~15 ms at start. */
export function criuMain(argv: string[]): Promise<void> {
  return (require('./criu-main') as typeof import('./criu-main')).criuMain(argv);
}

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { AmberError } from '../kernel/errors';
import { registerFileEntryMember } from '../images';
import { RESOURCE_PLUGIN, type ResourcePlugin } from './plugin';
import { checkKindsDistinct } from './fd-table';
import { registerServices, type RunServices } from './services';

export class PluginError extends AmberError {}

// tsyringe constructs plugin classes with whatever their constructors inject.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type PluginClass = new (...args: any[]) => ResourcePlugin;

export interface DiscoveryOptions {
  /** Module specifiers of the built-in plugins (resolved from the caller's location). */
  builtins?: string[];
  /** Extra plugin modules by path (`--plugin PATH`). */
  paths?: string[];
  /**
   * node_modules directories of amber's own installation: each package directly in them whose
   * package.json has an `"amber": {"plugin": ...}` field is loaded. Never a directory found from
   * the current one: amber runs as root, and code there is not trusted.
   */
  installDirs?: string[];
  /** Files listing plugins, one JSON array of paths (relative to the file) or package names. */
  configFiles?: string[];
  /** require() to load modules with, so specifiers resolve from the caller's package. */
  requireFn?: NodeJS.Require;
}

/**
 * The plugins of one amber run, held in a child DI container. Built-in and third-party plugins
 * are found the same way and get the same API.
 */
export class PluginRegistry {
  private readonly plugins: ResourcePlugin[];

  /**
   * @param container holds the plugins under RESOURCE_PLUGIN; they are resolved here once, outside
   * any run (names, checks), then anew for each run by forRun.
   */
  constructor(readonly container: DependencyContainer) {
    const catalog = container.createChildContainer();
    registerServices(catalog, {}, 'outside a dump, restore or compare');
    this.plugins = container.isRegistered(RESOURCE_PLUGIN, true) ? catalog.resolveAll<ResourcePlugin>(RESOURCE_PLUGIN) : [];
    const seen = new Set<string>();
    for (const p of this.plugins) {
      if (seen.has(p.name)) throw new PluginError(`two plugins are named '${p.name}'`);
      seen.add(p.name);
    }
    try {
      checkKindsDistinct(this.plugins);
    } catch (e) {
      throw new PluginError((e as Error).message);
    }
    // Each fd kind's part of files.img joins FileEntry now, so show and restore can read it.
    for (const p of this.plugins) for (const k of p.fileKinds ?? []) registerFileEntryMember(k.member, `the ${p.name} plugin's ${k.name} kind`);
  }

  static discover(opts: DiscoveryOptions): PluginRegistry {
    const container = rootContainer.createChildContainer();
    const req = opts.requireFn ?? require;
    const loaded = new Set<string>();
    const load = (specifier: string, from: string) => {
      let file: string;
      try {
        file = req.resolve(specifier);
      } catch {
        throw new PluginError(`plugin ${specifier} (${from}) cannot be found`);
      }
      if (loaded.has(file)) return;
      loaded.add(file);
      for (const cls of pluginsOf(req(file) as Record<string, unknown>, specifier)) {
        container.register(RESOURCE_PLUGIN, { useClass: cls });
      }
    };
    for (const b of opts.builtins ?? []) load(b, 'built-in');
    for (const dir of opts.installDirs ?? []) for (const entry of pluginPackagesIn(dir)) load(entry, `installed in ${dir}`);
    for (const file of opts.configFiles ?? []) for (const entry of configuredPlugins(file)) load(entry, `listed in ${file}`);
    for (const p of opts.paths ?? []) load(resolve(p), '--plugin');
    return new PluginRegistry(container);
  }

  /**
   * The plugins of one run, resolved anew from a child container holding the run's services (so
   * no plugin instance outlives its run), in the order of `selected`.
   */
  forRun(selected: readonly ResourcePlugin[], services: Partial<RunServices>, when: string): ResourcePlugin[] {
    const run = this.container.createChildContainer();
    registerServices(run, services, when);
    const fresh = this.container.isRegistered(RESOURCE_PLUGIN, true) ? run.resolveAll<ResourcePlugin>(RESOURCE_PLUGIN) : [];
    return selected.map((s) => {
      const p = fresh[this.plugins.indexOf(s)];
      if (!p || p.name !== s.name) throw new PluginError(`plugin ${s.name} did not resolve to itself for this run`);
      return p;
    });
  }

  all(): ResourcePlugin[] {
    return [...this.plugins];
  }

  get(name: string): ResourcePlugin | undefined {
    return this.plugins.find((p) => p.name === name);
  }

  /** The plugins an --only/--skip selection leaves; unknown names are an error. */
  select(only?: string[], skip?: string[]): ResourcePlugin[] {
    const names = new Set(this.plugins.map((p) => p.name));
    for (const n of [...(only ?? []), ...(skip ?? [])]) {
      if (!names.has(n)) throw new PluginError(`no plugin is named '${n}' (known: ${[...names].join(', ')})`);
    }
    return this.plugins.filter((p) => (!only?.length || only.includes(p.name)) && !skip?.includes(p.name));
  }
}

function pluginsOf(mod: Record<string, unknown>, specifier: string): PluginClass[] {
  const candidates = [mod.default, ...(Array.isArray(mod.plugins) ? mod.plugins : []), mod.plugin];
  const out = candidates.filter((c): c is PluginClass => typeof c === 'function');
  if (!out.length) throw new PluginError(`${specifier} exports no plugin class (export default, plugin or plugins)`);
  return out;
}

/**
 * Entry files of the packages in one node_modules directory that declare themselves amber
 * plugins.
 */
export function pluginPackagesIn(nodeModules: string): string[] {
  if (!existsSync(nodeModules)) return [];
  assertNotWritableByOthers(nodeModules);
  const out: string[] = [];
  for (const name of readdirSync(nodeModules)) {
    const pkgDirs = name.startsWith('@') ? readdirSync(join(nodeModules, name)).map((n) => join(nodeModules, name, n)) : [join(nodeModules, name)];
    for (const pkgDir of pkgDirs) {
      const entry = pluginEntry(pkgDir);
      if (entry) out.push(entry);
    }
  }
  return out;
}

/** The plugins a configuration file lists: a JSON array of paths (relative to it) or package names. */
export function configuredPlugins(file: string): string[] {
  if (!existsSync(file)) return [];
  assertNotWritableByOthers(file);
  let list: unknown;
  try {
    list = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PluginError(`${file}: not a JSON list of plugins (${(e as Error).message})`);
  }
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new PluginError(`${file}: not a JSON list of plugin paths or package names`);
  return list.map((x) => (x.startsWith('.') || x.startsWith('/') ? resolve(dirname(file), x) : x));
}

/** Whoever may change the place may change what runs as root: group- or world-writable is refused. */
function assertNotWritableByOthers(path: string): void {
  const st = statSync(path);
  if ((st.mode & 0o022) !== 0) {
    throw new PluginError(`${path}: plugins are not loaded from a place others may change (mode 0${(st.mode & 0o777).toString(8)})`);
  }
}

function pluginEntry(pkgDir: string): string | undefined {
  try {
    const text = readFileSync(join(pkgDir, 'package.json'), 'utf8');
    // most packages beside amber are not plugins: only a manifest naming amber is parsed
    if (!text.includes('"amber"')) return undefined;
    const pkg = JSON.parse(text) as { amber?: { plugin?: string } };
    return pkg.amber?.plugin ? join(pkgDir, pkg.amber.plugin) : undefined;
  } catch {
    return undefined;
  }
}

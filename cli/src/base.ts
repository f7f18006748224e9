import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Flags, type Interfaces } from '@oclif/core';
import type { Logger, PluginRegistry } from '@amber/core';
import { markLogged } from './errors';
import { ProgressLine } from './progress';

type Core = typeof import('@amber/core');

/** amber's own package (where its package.json is), wherever it was installed. */
const CLI_PACKAGE_DIR = path.resolve(__dirname, '..');

/**
 * node_modules directories amber itself was installed into: the one its dependencies come from
 * and, when amber is an installed package, the one holding it (an install prefix, where
 * `npm i -g` puts a plugin beside it). Never anything found from the current directory.
 */
function amberInstallDirs(): string[] {
  const upToNodeModules = (p: string) => {
    const i = p.lastIndexOf(`${path.sep}node_modules${path.sep}`);
    return i < 0 ? undefined : p.slice(0, i + `${path.sep}node_modules`.length);
  };
  // koffi: the one dependency that is a package in every build (the one-file build holds the rest)
  const dirs = [upToNodeModules(require.resolve('koffi')), upToNodeModules(fs.realpathSync(CLI_PACKAGE_DIR) + path.sep)];
  return [...new Set(dirs.filter((d): d is string => d !== undefined))];
}

/** The plugins every run knows without being told. */
const BUILTIN_PLUGINS = ['@amber/plugin-mm', '@amber/plugin-fs', '@amber/plugin-unix', '@amber/plugin-net-tcp', '@amber/plugin-tty', '@amber/plugin-ipc'];

export const pluginFlag = Flags.string({
  description: 'load a resource plugin from this file or package (repeatable)',
  multiple: true,
  helpValue: 'PATH',
});

export const listFlag = (description: string): Interfaces.OptionFlag<string[] | undefined> =>
  Flags.string({ description, multiple: true, delimiter: ',', helpValue: 'NAME[,NAME...]' });

/** What every command shares: -v, lazy access to core and the plugins. */
export abstract class AmberCommand extends Command {
  static override baseFlags = {
    verbose: Flags.boolean({ char: 'v', description: 'print the stack of an error too (on stderr)' }),
  };

  /** @amber/core, loaded only once a command really runs, so that --help stays fast. */
  protected async loadCore(): Promise<Core> {
    // node's start-up, the bundle and oclif are loaded: what they touched of node's binary leaves
    // amber's resident set before core and the plugins load (core's module for it, alone, does it)
    (require('@amber/core/dist/task/code-pages') as typeof import('@amber/core/dist/task/code-pages')).releaseCleanCodePages();
    return import('@amber/core');
  }

  protected discoverPlugins(core: Core, paths: string[] | undefined): PluginRegistry {
    const registry = core.PluginRegistry.discover({
      builtins: BUILTIN_PLUGINS,
      installDirs: amberInstallDirs(),
      configFiles: [path.join(CLI_PACKAGE_DIR, 'plugins.json')],
      paths: paths ?? [],
      requireFn: require,
    });
    // loading is over: what compiling core and the plugins touched of node's binary goes too
    core.releaseCleanCodePages();
    return registry;
  }
}

/** Commands that run the engine at length: a log and a progress line. */
export abstract class EngineCommand extends AmberCommand {
  static override baseFlags = {
    ...AmberCommand.baseFlags,
    verbose: Flags.boolean({ char: 'v', description: 'print debug log lines and the stack of an error (on stderr, or into --log-file)' }),
    'log-file': Flags.string({ char: 'o', description: 'write the log to this file instead of stderr', helpValue: 'FILE' }),
  };

  protected readonly progressLine = new ProgressLine();
  private logFd: number | undefined;

  /**
   * -v: debug lines; -o FILE: every line goes to the file; neither: only warnings reach stderr,
   * so a failure still ends in the single `amber:` line.
   */
  protected makeLogger(core: Core, verbose: boolean, logFile: string | undefined): Logger {
    if (logFile !== undefined) {
      const fd = fs.openSync(logFile, 'a', 0o600);
      this.logFd = fd;
      return core.streamLogger((line) => fs.writeSync(fd, `${line}\n`), verbose);
    }
    const toStderr = (line: string): void => {
      this.progressLine.clear();
      process.stderr.write(`${line}\n`);
    };
    if (verbose) return core.streamLogger(toStderr, true);
    const warnings = core.streamLogger(toStderr, false);
    return { info() {}, debug() {}, warn: (m) => warnings.warn(m) };
  }

  /**
   * The engine's work and the line that reports it, under one interrupt guard: a signal that
   * comes after the work is done (the guard then only counts it) cannot end amber before it has
   * said what it did.
   */
  protected reported<T>(core: Core, work: () => Promise<T>, report: (result: T) => void): Promise<void> {
    return core.InterruptGuard.around(async () => report(await work()));
  }

  protected readonly progress = (done: number, total: number, what: string): void => {
    this.progressLine.update(done, total, what);
  };

  protected override async finally(err: Error | undefined): Promise<void> {
    this.progressLine.clear();
    if (this.logFd !== undefined) {
      // The error itself lands in the log too, so the file tells the whole story.
      if (err) {
        fs.writeSync(this.logFd, `error: ${err.stack ?? err.message}\n`);
        markLogged(err);
      }
      fs.closeSync(this.logFd);
      this.logFd = undefined;
    }
    await super.finally(err);
  }
}

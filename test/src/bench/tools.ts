// The two tools as whole commands: amber (node cli/bin/run.js) and, when CRIU_BIN names one, CRIU.
// Each command runs under /usr/bin/time, whose wait4() gives the command's peak RSS.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cliEntry } from '../harness';
import type { Sample } from './stats';

const TIME = '/usr/bin/time';

export interface Timed extends Sample {
  stdout: string;
  stderr: string;
}

export class CommandFailed extends Error {
  constructor(
    readonly argv: string[],
    readonly detail: string,
  ) {
    super(`${argv.join(' ')} failed: ${detail}`);
  }
}

let scratch: string | undefined;

/** Runs argv to its end; wall time from spawn to exit, peak RSS from /usr/bin/time's wait4(). */
export function timed(argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Timed {
  if (!existsSync(TIME)) throw new Error(`bench: ${TIME} is missing (Debian package time): it gives each command's peak RSS`);
  scratch ??= mkdtempSync('/dev/shm/amber-bench-time-');
  const rssFile = join(scratch, 'rss');
  const t0 = performance.now();
  const r = spawnSync(TIME, ['-f', '%M', '-o', rssFile, ...argv], {
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 300_000,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.error) throw new CommandFailed(argv, r.error.message);
  if (r.status !== 0) throw new CommandFailed(argv, `exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const peakRssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  return { seconds, peakRssKb, stdout: r.stdout, stderr: r.stderr };
}

export function removeScratch(): void {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** What the scenarios ask of a checkpoint tool. Image directories exist and are empty. */
export interface CheckpointTool {
  readonly name: 'amber' | 'CRIU';
  version(): Timed;
  /** Dumps the tree of pid into dir and kills it. */
  dump(pid: number, dir: string): Timed;
  /** Restores dir, detached; the restored root is reparented to the bench (its subreaper). */
  restore(dir: string): Timed;
  preDump(pid: number, dir: string): Timed;
  /** A dump with only the pages changed since the pre-dump in prevDir (relative to dir). */
  dumpAfterPreDump(pid: number, dir: string, prevDir: string): Timed;
}

/** amber's memory data paths (--pages-via on dump, --pages-fill on restore); unset: amber's defaults. */
export interface AmberPaths {
  via?: 'splice' | 'copy' | 'writev' | 'amber';
  fill?: 'uffd' | 'preadv';
}

/**
 * amber as a user runs it: the command itself (its #! line gives node its flags); with nodeFlags
 * (--cpu-prof ...), `node FLAGS run.js`; paths (its data paths) and env for the bench's own studies.
 */
export function amberTool(opts: { nodeFlags?: string[]; paths?: AmberPaths; env?: NodeJS.ProcessEnv } = {}): CheckpointTool {
  const argv = opts.nodeFlags ? [process.execPath, ...opts.nodeFlags, cliEntry] : [cliEntry];
  const run = (args: string[]) => timed([...argv, ...args], { env: opts.env });
  const via = opts.paths?.via ? ['--pages-via', opts.paths.via] : [];
  const fill = opts.paths?.fill ? ['--pages-fill', opts.paths.fill] : [];
  return {
    name: 'amber',
    version: () => run(['--version']),
    dump: (pid, dir) => run(['dump', '-t', String(pid), '-D', dir, ...via]),
    restore: (dir) => run(['restore', '-D', dir, '-d', ...fill]),
    preDump: (pid, dir) => run(['pre-dump', '-t', String(pid), '-D', dir]),
    dumpAfterPreDump: (pid, dir, prev) => run(['dump', '-t', String(pid), '-D', dir, '--prev-images-dir', prev, '--track-mem']),
  };
}

/** CRIU 4.x: logs into the images directory (-o is relative to it), as a user of CRIU would. */
export function criuTool(bin: string): CheckpointTool {
  const run = (args: string[], dir: string, log: string): Timed => {
    try {
      return timed([bin, ...args, '-D', dir, '-o', log]);
    } catch (err) {
      if (!(err instanceof CommandFailed)) throw err;
      const lines = existsSync(join(dir, log)) ? readFileSync(join(dir, log), 'utf8').split('\n').filter((l) => l.startsWith('Error')) : [];
      throw new CommandFailed(err.argv, lines.slice(0, 2).join(' | ') || err.detail);
    }
  };
  return {
    name: 'CRIU',
    version: () => timed([bin, '--version']),
    dump: (pid, dir) => run(['dump', '-t', String(pid)], dir, 'dump.log'),
    restore: (dir) => run(['restore', '-d'], dir, 'restore.log'),
    preDump: (pid, dir) => run(['pre-dump', '-t', String(pid), '--track-mem'], dir, 'pre-dump.log'),
    dumpAfterPreDump: (pid, dir, prev) => run(['dump', '-t', String(pid), '--prev-images-dir', prev, '--track-mem'], dir, 'dump.log'),
  };
}

/** CRIU_BIN, checked to be a CRIU 4.x: the bench compares with nothing older. */
export function criuFromEnv(env: NodeJS.ProcessEnv = process.env): { tool?: CheckpointTool; version?: string } {
  const bin = env.CRIU_BIN;
  if (!bin) return {};
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  const version = /Version:\s*(\S+)/.exec(r.stdout ?? '')?.[1];
  if (r.error || !version) throw new Error(`bench: CRIU_BIN=${bin} does not run as criu --version: ${r.error?.message ?? r.stdout.trim()}`);
  if (!/^4\./.test(version)) throw new Error(`bench: CRIU_BIN=${bin} is CRIU ${version}; the bench compares with CRIU 4.x`);
  return { tool: criuTool(bin), version };
}

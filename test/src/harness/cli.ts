import { spawnSync } from 'node:child_process';
import { cliEntry } from './paths';

export interface AmberResult {
  /** Exit code, or null when the CLI was killed by a signal or timed out. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface AmberOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs `node cli/bin/run.js ...args` synchronously and captures its output. */
/**
 * The environment an amber command of a test runs in, as the command itself starts node
 * (cli/bin/run.js's #! line): without the certificates NODE_EXTRA_CA_CERTS names, which node would
 * read at every start (npm, which the install test runs, still gets them: where they name a
 * proxy's CA, npm cannot fetch without).
 */
export function amberEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, NODE_EXTRA_CA_CERTS: undefined, ...extra };
}

export function amber(args: string[], opts: AmberOptions = {}): AmberResult {
  const r = spawnSync(process.execPath, [cliEntry, ...args], {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    env: amberEnv(opts.env),
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
    // amber catches SIGTERM (and finishes its undo first): a hung one must still go
    killSignal: 'SIGKILL',
  });
  const stderr = r.error ? `${r.stderr ?? ''}${r.error.message}\n` : r.stderr ?? '';
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr };
}

/** One-line summary for assertion messages. */
export function describeAmber(args: string[], r: AmberResult): string {
  const how = r.status !== null ? `exit ${r.status}` : `signal ${r.signal ?? '?'}`;
  return `amber ${args.join(' ')} -> ${how}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`;
}

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { AmberResult } from './cli';
import { cliEntry } from './paths';

/**
 * Test hosts made of network namespaces: two namespaces this test run creates, joined by a veth
 * pair whose addresses exist only inside them. Nothing here touches the machine's own network —
 * every command runs inside one of the namespaces, and the veth pair is created inside them
 * (never in the root namespace), so its names cannot clash with another run's.
 */

export interface Host {
  /** The namespace's name (`ip netns`), unique to this test run. */
  netns: string;
  /** /run/netns/NAME: what `nsenter --net=` and StartOptions.netns take. */
  nsPath: string;
  /** This host's end of the veth pair. */
  dev: string;
  ipv4: string;
  ipv6: string;
}

export interface HostPair {
  a: Host;
  b: Host;
  /** Deletes both namespaces (idempotent). Targets still running inside keep theirs alive until killed. */
  remove(): void;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const live = new Set<string>();
let pairs = 0;

function run(argv: string[], input?: string): RunResult {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', input, timeout: 30_000 });
  const stderr = r.error ? `${r.stderr ?? ''}${r.error.message}` : r.stderr ?? '';
  return { status: r.status, stdout: r.stdout ?? '', stderr };
}

function must(argv: string[], input?: string): string {
  const r = run(argv, input);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} -> exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Runs argv inside host's network namespace (`ip netns exec`), without throwing. */
export function inHost(host: Host | string, argv: string[], input?: string): RunResult {
  const name = typeof host === 'string' ? host : host.netns;
  return run(['ip', 'netns', 'exec', name, ...argv], input);
}

/** Runs argv inside host's network namespace; throws with its stderr when it fails. */
export function inHostOk(host: Host | string, argv: string[], input?: string): string {
  const name = typeof host === 'string' ? host : host.netns;
  return must(['ip', 'netns', 'exec', name, ...argv], input);
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(`/run/netns/${name}`);
}

function deleteNetns(name: string): void {
  if (netnsExists(name)) must(['ip', 'netns', 'del', name]);
  live.delete(name);
}

/**
 * Creates hosts A and B (10.77.N.1 and .2 /24, fd77:0:0:N::1 and ::2 /64), loopback up in both.
 * Call remove() in t.after / finally; removeAllHosts() catches what a failed test left.
 */
export function makeHostPair(label = 'net'): HostPair {
  const n = (pairs++ % 250) + 1;
  const base = `amber-${label}-${process.pid}-${n}`;
  const a: Host = { netns: `${base}-a`, nsPath: `/run/netns/${base}-a`, dev: 'veth-a', ipv4: `10.77.${n}.1`, ipv6: `fd77:0:0:${n}::1` };
  const b: Host = { netns: `${base}-b`, nsPath: `/run/netns/${base}-b`, dev: 'veth-b', ipv4: `10.77.${n}.2`, ipv6: `fd77:0:0:${n}::2` };
  const pair: HostPair = { a, b, remove: () => { deleteNetns(a.netns); deleteNetns(b.netns); } };
  try {
    for (const h of [a, b]) {
      if (netnsExists(h.netns)) throw new Error(`netns ${h.netns} already exists`);
      must(['ip', 'netns', 'add', h.netns]);
      live.add(h.netns);
    }
    // Both ends are born inside the namespaces: the root namespace never sees them.
    must(['ip', '-n', a.netns, 'link', 'add', a.dev, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.netns]);
    for (const h of [a, b]) {
      must(['ip', '-n', h.netns, 'link', 'set', 'lo', 'up']);
      must(['ip', '-n', h.netns, 'addr', 'add', `${h.ipv4}/24`, 'dev', h.dev]);
      // nodad: usable at once, not after duplicate address detection's ~2 s
      must(['ip', '-n', h.netns, 'addr', 'add', `${h.ipv6}/64`, 'dev', h.dev, 'nodad']);
      must(['ip', '-n', h.netns, 'link', 'set', h.dev, 'up']);
    }
    // The veth carrier and IPv6 routes come up asynchronously: the first ping can find no route.
    for (const [from, to] of [[a, b.ipv4], [a, b.ipv6], [b, a.ipv4], [b, a.ipv6]] as const) {
      if (!waitFor(() => canPing(from, to), 5_000)) throw new Error(`${from.netns} cannot reach ${to} within 5 s`);
    }
  } catch (err) {
    pair.remove();
    throw err;
  }
  return pair;
}

function waitFor(ok: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() >= deadline) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  return true;
}

/** Deletes every namespace this process created and has not removed yet. */
export function removeAllHosts(): void {
  const errors: string[] = [];
  for (const name of [...live]) {
    try {
      deleteNetns(name);
    } catch (err) {
      errors.push(String(err));
    }
  }
  if (errors.length) throw new Error(`removeAllHosts: ${errors.join('; ')}`);
}

/** True when host can ping addr once (IPv4 or IPv6) within a second. */
export function canPing(host: Host, addr: string): boolean {
  return inHost(host, ['ping', '-c', '1', '-W', '1', addr]).status === 0;
}

/**
 * Rate-limits what host sends on its veth end (tc tbf): data stays in the sender's queue and in
 * flight, unacknowledged, for as long as the test needs (this kernel has no netem).
 */
export function rateLimit(host: Host, rate = '256kbit', burst = '16kb', latency = '5s'): () => void {
  inHostOk(host, ['tc', 'qdisc', 'add', 'dev', host.dev, 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', latency]);
  return () => {
    if (netnsExists(host.netns)) inHost(host, ['tc', 'qdisc', 'del', 'dev', host.dev, 'root']);
  };
}

/**
 * A drop rule of the test's own, in a table of its own inside host: `match` is an nft match
 * expression such as `ip saddr 10.77.1.1 tcp sport 6379`. Returns the undo.
 */
export function dropRule(host: Host, match: string, hook: 'input' | 'output' = 'input'): { table: string; remove: () => void } {
  const table = `amber-test-${process.pid}-${hook}`;
  const script = `table inet ${table} {\n  chain c {\n    type filter hook ${hook} priority -10; policy accept;\n    ${match} drop\n  }\n}\n`;
  inHostOk(host, ['nft', '-f', '-'], script);
  return {
    table,
    remove: () => {
      if (netnsExists(host.netns)) inHost(host, ['nft', 'delete', 'table', 'inet', table]);
    },
  };
}

/** The nft tables inside host, as "family name" lines. */
export function nftTables(host: Host | string): string[] {
  const r = inHostOk(host, ['nft', 'list', 'tables']);
  return r.split('\n').map((l) => l.replace(/^table\s+/, '').trim()).filter((l) => l !== '');
}

/**
 * Runs amber inside host's network namespace (nsenter --net, nothing else changes): a restore
 * makes its tasks in the namespace it runs in, so a tree dumped in host A is restored from there.
 */
export function amberInHost(host: Host, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): AmberResult {
  const r = spawnSync('nsenter', [`--net=${host.nsPath}`, process.execPath, cliEntry, ...args], {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
    killSignal: 'SIGKILL',
  });
  const stderr = r.error ? `${r.stderr ?? ''}${r.error.message}\n` : r.stderr ?? '';
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr };
}

import { closeSync, openSync } from 'node:fs';
import { AmberError, FAKE_SEGMENT_MARK, type Logger, type NetworkLockMethod } from '@amber/core';

/**
 * The network lock: from the freeze until the restored sockets are live, packets of the dumped
 * connections are dropped in the tree's network namespace, both ways. The peer's segments never
 * reach TCP, so the kernel has no socket to answer them with a reset once the dumped task is gone:
 * the peer only sees a pause, retransmits, and is answered again by the restored socket.
 *
 * The rules live in a table (nftables) or chain (iptables) of amber's own, named after the tree's
 * root pid, so a restore (which knows that pid from the images) can remove them without knowing
 * how they were written, and nothing of anyone else's ruleset is touched. amber runs in the root
 * namespace: the tools run inside the tree's (nsenter --net=/proc/PID/ns/net).
 */

export { NETWORK_LOCK_METHODS, type NetworkLockMethod } from '@amber/core';

export interface Endpoint {
  address: string;
  port: number;
}

/** One connection of the tree, as its own socket sees it. */
export interface LockedConnection {
  local: Endpoint;
  remote: Endpoint;
}

export class NetworkLockError extends AmberError {
  constructor(
    readonly pid: number,
    readonly method: NetworkLockMethod,
    what: string,
  ) {
    super(`network lock (${method}) in the network namespace of pid ${pid}: ${what}`);
  }
}

/** What runs the tools: argv, its stdin; replaced in unit tests. */
export type CommandRunner = (argv: string[], input?: string) => { status: number | null; stderr: string };

/** The tools run for real (spawnSync); what NetworkLock uses unless given another. */
export const spawnRunner: CommandRunner = (argv, input) => {
  // required here: node:child_process costs every start ~2.5 ms, and only --network-lock runs tools
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8', timeout: 20_000, stdio: ['pipe', 'ignore', 'pipe'] });
  if (r.error) return { status: null, stderr: r.error.message };
  return { status: r.status, stderr: r.stderr ?? '' };
};

/** Table (nftables) or chain (iptables) name of the lock of the tree rooted at rootPid. */
export const lockName = (rootPid: number): string => `amber-${rootPid}`;

type Family = 4 | 6;

/** Packets of an IPv4-mapped IPv6 socket (::ffff:a.b.c.d) are IPv4 on the wire. */
function onWire(address: string): { family: Family; address: string } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { family: 4, address: mapped[1] };
  return { family: address.includes(':') ? 6 : 4, address };
}

interface WireConnection {
  family: Family;
  local: Endpoint;
  remote: Endpoint;
}

function wireConnections(conns: readonly LockedConnection[]): WireConnection[] {
  const out: WireConnection[] = [];
  for (const c of conns) {
    const l = onWire(c.local.address);
    const r = onWire(c.remote.address);
    if (l.family !== r.family) throw new Error(`connection ${c.local.address}:${c.local.port} -> ${c.remote.address}:${c.remote.port} mixes families`);
    for (const e of [c.local, c.remote]) {
      if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) throw new Error(`bad port ${e.port}`);
    }
    if (![l.address, r.address].every((a) => /^[0-9a-fA-F:.]+$/.test(a))) throw new Error(`bad address in ${l.address} / ${r.address}`);
    out.push({ family: l.family, local: { address: l.address, port: c.local.port }, remote: { address: r.address, port: c.remote.port } });
  }
  return out;
}

/**
 * One nft transaction (all of it or nothing): the table emptied or made, then a set per family
 * of (local addr . local port . remote addr . remote port), matched on input with the peer's
 * addresses swapped and on output as they are.
 */
export function nftLockScript(table: string, conns: readonly LockedConnection[]): string {
  const wire = wireConnections(conns);
  const lines = [
    `table inet ${table} {}`,
    `flush table inet ${table}`,
    `table inet ${table} {`,
    '  set conns4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }',
    '  set conns6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }',
    '  chain input {',
    '    type filter hook input priority -150; policy accept;',
    `    meta mark ${FAKE_SEGMENT_MARK} accept`,
    '    ip daddr . tcp dport . ip saddr . tcp sport @conns4 drop',
    '    ip6 daddr . tcp dport . ip6 saddr . tcp sport @conns6 drop',
    '  }',
    '  chain output {',
    '    type filter hook output priority -150; policy accept;',
    `    meta mark ${FAKE_SEGMENT_MARK} accept`,
    '    ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop',
    '    ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop',
    '  }',
    '}',
  ];
  for (const family of [4, 6] as const) {
    const elements = wire.filter((c) => c.family === family).map((c) => `${c.local.address} . ${c.local.port} . ${c.remote.address} . ${c.remote.port}`);
    if (elements.length) lines.push(`add element inet ${table} conns${family} { ${elements.join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * iptables-restore input (one table, applied at once) for one family's connections. Declaring
 * the chain empties it if it exists, in the same commit that fills it again; `jumps` are the
 * hooks still to be sent into it (those that already jump there are left as they are).
 */
export function iptablesLockScript(chain: string, conns: readonly WireConnection[], jumps: readonly ('INPUT' | 'OUTPUT')[] = ['INPUT', 'OUTPUT']): string {
  const lines = ['*filter', `:${chain} - [0:0]`, ...jumps.map((hook) => `-I ${hook} 1 -j ${chain}`), `-A ${chain} -m mark --mark ${FAKE_SEGMENT_MARK} -j RETURN`];
  for (const c of conns) {
    const { local: l, remote: r } = c;
    lines.push(`-A ${chain} -p tcp -s ${r.address} --sport ${r.port} -d ${l.address} --dport ${l.port} -j DROP`);
    lines.push(`-A ${chain} -p tcp -s ${l.address} --sport ${l.port} -d ${r.address} --dport ${r.port} -j DROP`);
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

export interface NetworkLockOptions {
  /** The tree's root pid: names the table. */
  rootPid: number;
  /** A pid inside the network namespace to lock (the root itself, or a restored task). */
  nsPid: number;
  /** Asked for; undefined = nftables, else iptables when nft is not installed. */
  method?: NetworkLockMethod;
  log?: Logger;
  run?: CommandRunner;
}

/** nsenter exits 127 when it cannot execute the tool. */
const missingTool = (r: { status: number | null }): boolean => r.status === null || r.status === 127;

/** A lock of one tree's connections in one network namespace. */
export class NetworkLock {
  readonly name: string;
  private readonly run: CommandRunner;
  private chosen: NetworkLockMethod;
  private held = false;
  /** amber's own fd of the namespace, taken at once: the pid may die (or be reused) before unlock. */
  private nsFd: number | undefined;

  constructor(private readonly opts: NetworkLockOptions) {
    this.name = lockName(opts.rootPid);
    this.run = opts.run ?? spawnRunner;
    this.chosen = opts.method ?? 'nftables';
    if (!opts.run && this.chosen !== 'skip') {
      try {
        this.nsFd = openSync(`/proc/${opts.nsPid}/ns/net`, 'r');
      } catch (err) {
        throw new NetworkLockError(opts.nsPid, this.chosen, `cannot open its network namespace: ${(err as Error).message}`);
      }
    }
  }

  /** Lets go of the namespace (the lock itself stays, if held). */
  close(): void {
    if (this.nsFd !== undefined) closeSync(this.nsFd);
    this.nsFd = undefined;
  }

  get method(): NetworkLockMethod {
    return this.chosen;
  }

  get locked(): boolean {
    return this.held;
  }

  private inNetns(argv: string[], input?: string) {
    const ns = this.nsFd !== undefined ? `/proc/${process.pid}/fd/${this.nsFd}` : `/proc/${this.opts.nsPid}/ns/net`;
    return this.run(['nsenter', `--net=${ns}`, ...argv], input);
  }

  private error(what: string, r: { status: number | null; stderr: string }): NetworkLockError {
    const why = r.stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(0, 2).join('; ') || `exit ${r.status}`;
    return new NetworkLockError(this.opts.nsPid, this.chosen, `${what}: ${why}`);
  }

  /**
   * Drops every packet of conns, both ways, in one transaction. `replace`: an existing lock of
   * the same name is taken over (a restore finds the one its dump left); otherwise one is refused,
   * since it may be another dump's that is still waiting for its restore.
   */
  lock(conns: readonly LockedConnection[], replace = false): void {
    if (this.chosen === 'skip') return;
    const wire = wireConnections(conns);
    if (this.chosen === 'nftables') {
      if (!replace && this.nftExists()) {
        throw new NetworkLockError(this.opts.nsPid, 'nftables', `table inet ${this.name} already exists (a dump of this tree not yet restored?); remove it with nft delete table inet ${this.name}, or dump with --network-lock skip`);
      }
      const r = this.inNetns(['nft', '-f', '-'], nftLockScript(this.name, conns));
      if (r.status === 0) {
        this.held = true;
        return;
      }
      if (this.opts.method !== undefined || !missingTool(r)) throw this.error(`cannot create table inet ${this.name}`, r);
      this.opts.log?.warn(`nft is not available (${r.stderr.trim()}): locking the network with iptables`);
      this.chosen = 'iptables';
    }
    const families = ([4, 6] as const).filter((family) => wire.some((c) => c.family === family));
    const present = new Map(families.map((family) => [family, this.iptablesChainExists(family === 4 ? 'iptables' : 'ip6tables')]));
    const taken = families.find((family) => present.get(family));
    if (!replace && taken !== undefined) {
      const t = taken === 4 ? 'iptables' : 'ip6tables';
      throw new NetworkLockError(this.opts.nsPid, 'iptables', `chain ${this.name} already exists (a dump of this tree not yet restored?); remove it with ${t} -D INPUT -j ${this.name}; ${t} -D OUTPUT -j ${this.name}; ${t} -X ${this.name}, or dump with --network-lock skip`);
    }
    this.held = true; // from here a failure leaves part of it: unlock() removes what was made
    for (const family of families) {
      const tool = family === 4 ? 'iptables' : 'ip6tables';
      // A chain taken over is emptied and filled again in one commit: removing it first left the
      // connections open between two commands, and a retransmission that crossed then met no
      // socket and was answered with a reset (seen once in CI, redis's client got ECONNRESET).
      const jumps = (['INPUT', 'OUTPUT'] as const).filter((hook) => !present.get(family) || this.inNetns([tool, '-w', '-C', hook, '-j', this.name]).status !== 0);
      const r = this.inNetns([`${tool}-restore`, '-w', '--noflush'], iptablesLockScript(this.name, wire.filter((c) => c.family === family), jumps));
      if (r.status !== 0) {
        const err = this.error(`cannot add chain ${this.name} (IPv${family})`, r);
        this.unlock();
        throw err;
      }
    }
  }

  /** Removes the lock; a lock already gone is not an error. Safe to call more than once. */
  unlock(): void {
    if (this.chosen === 'skip') return;
    if (this.chosen === 'nftables') {
      const r = this.inNetns(['nft', 'delete', 'table', 'inet', this.name]);
      // nft's own words for a table that is not there (nsenter's failures are errors)
      const gone = /^Error: Could not process rule: No such file or directory/m.test(r.stderr) || missingTool(r);
      if (r.status !== 0 && !gone) throw this.error(`cannot delete table inet ${this.name}`, r);
    } else {
      this.unlockIptables();
    }
    this.held = false;
    this.close();
  }

  private nftExists(): boolean {
    return this.inNetns(['nft', 'list', 'table', 'inet', this.name]).status === 0;
  }

  private iptablesChainExists(tool: 'iptables' | 'ip6tables'): boolean {
    const r = this.inNetns([tool, '-w', '-n', '-L', this.name]);
    if (r.status === 0) return true;
    if (/^nsenter:/m.test(r.stderr) && !missingTool(r)) throw this.error('cannot enter its network namespace', r);
    return false;
  }

  private unlockIptables(): void {
    const problems: string[] = [];
    for (const tool of ['iptables', 'ip6tables'] as const) {
      if (!this.iptablesChainExists(tool)) continue; // no chain of ours (or no such tool): nothing to remove
      for (const hook of ['INPUT', 'OUTPUT']) {
        // -D removes one jump per call: repeat until none is left
        for (let i = 0; i < 8 && this.inNetns([tool, '-w', '-D', hook, '-j', this.name]).status === 0; i++);
      }
      for (const step of [['-F', this.name], ['-X', this.name]]) {
        const r = this.inNetns([tool, '-w', ...step]);
        if (r.status !== 0) problems.push(`${tool} ${step.join(' ')}: ${r.stderr.trim()}`);
      }
    }
    if (problems.length) throw new NetworkLockError(this.opts.nsPid, 'iptables', `cannot remove chain ${this.name}: ${problems.join('; ')}`);
  }
}

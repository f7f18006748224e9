import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Host } from './netns';

export type PeerMode = 'stream' | 'redis' | 'http';

export interface PeerEvent {
  t: number;
  ev: string;
  [key: string]: unknown;
}

export interface PeerStats {
  received: number;
  answers: number;
  /** Longest time between two answers (redis, http), in ms. */
  maxGapMs: number;
  /** null while the connection is open; else 'EOF' or the error code (ECONNRESET ...). */
  closed: string | null;
  clientId: string | null;
  lastValue: string | null;
  /** The peer's own end, addr:port. */
  local: string;
}

export interface Peer {
  events: PeerEvent[];
  /** Sends bytes (a Buffer, or that many 'a's); resolves when the peer's write callback ran. */
  send(data: Buffer | number): Promise<void>;
  /** redis: asks CLIENT ID again, in band; resolves with it. */
  clientId(timeoutMs?: number): Promise<string>;
  stats(timeoutMs?: number): Promise<PeerStats>;
  /** Resolves with the first event (already seen or to come) matching pred. */
  waitFor(pred: (e: PeerEvent) => boolean, timeoutMs?: number, what?: string): Promise<PeerEvent>;
  quit(): Promise<PeerStats>;
}

const CHILD = path.join(__dirname, 'net-peer-child.js');
const running = new Set<ChildProcess>();

/**
 * A client inside host (a child of the test process, in host's network namespace) connected to
 * addr:port. Resolves once it is connected (redis: once CLIENT ID answered).
 */
export async function startPeer(host: Host, mode: PeerMode, addr: string, port: number, timeoutMs = 10_000): Promise<Peer> {
  const child = spawn('ip', ['netns', 'exec', host.netns, process.execPath, CHILD, mode, addr, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  const events: PeerEvent[] = [];
  const waiters: { pred: (e: PeerEvent) => boolean; resolve: (e: PeerEvent) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    let e: PeerEvent;
    try {
      e = JSON.parse(line) as PeerEvent;
    } catch {
      return;
    }
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const write = (cmd: object) => child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  const waitFor = (pred: (e: PeerEvent) => boolean, ms = 10_000, what = 'event'): Promise<PeerEvent> => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer in ${host.netns}: no ${what} within ${ms} ms; events ${JSON.stringify(events.slice(-5))}; stderr ${stderr.trim()}`)), ms);
      waiters.push({ pred, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  };
  const since = (t0: number) => (e: PeerEvent) => e.t >= t0;
  const stats = async (ms = 10_000): Promise<PeerStats> => {
    const n = events.length;
    write({ op: 'stats' });
    const e = await waitFor((x) => x.ev === 'stats' && events.indexOf(x) >= n, ms, 'stats');
    return e as unknown as PeerStats;
  };
  const peer: Peer = {
    events,
    send: async (data) => {
      const n = events.filter((e) => e.ev === 'sent').length;
      write(typeof data === 'number' ? { op: 'send', bytes: data } : { op: 'send', data: data.toString('base64') });
      await waitFor((e) => e.ev === 'sent' && events.filter((x) => x.ev === 'sent').indexOf(e) === n, 30_000, 'write callback');
    },
    clientId: async (ms = 10_000) => {
      const t0 = Date.now();
      write({ op: 'clientid' });
      const e = await waitFor((x) => x.ev === 'clientid' && since(t0)(x), ms, 'CLIENT ID reply');
      return String(e.clientId);
    },
    stats,
    waitFor,
    quit: async () => {
      const n = events.length;
      write({ op: 'quit' });
      const e = await waitFor((x) => x.ev === 'stats' && events.indexOf(x) >= n, 10_000, 'final stats');
      return e as unknown as PeerStats;
    },
  };
  await waitFor((e) => e.ev === 'connected' || e.ev === 'error', timeoutMs, 'connection').then((e) => {
    if (e.ev === 'error') throw new Error(`peer in ${host.netns} could not connect to ${addr}:${port}: ${String(e.code)}`);
  });
  return peer;
}

/** Kills every peer still running (they are the test process's own children). */
export function stopPeers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

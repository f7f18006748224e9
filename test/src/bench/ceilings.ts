// The machine's own ceilings for a size, measured in a child node process (so the bench's memory
// stays flat): `node ceilings.js BYTES` prints {memcpy, freshWrite, tmpfsFirstWrite} in bytes/s.
// Also the prefault step: `node ceilings.js --prefault BYTES` touches and frees that much memory.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from './stats';
import { timed } from './tools';

export interface Ceilings {
  memcpy: number;
  freshWrite: number;
  tmpfsFirstWrite: number;
}

const CHUNK = 256 << 20;

/** Buffers of at most CHUNK bytes adding up to `bytes` (one Buffer cannot hold 4 GiB). */
function chunks(bytes: number, fill?: number): Buffer[] {
  const out: Buffer[] = [];
  for (let left = bytes; left > 0; left -= CHUNK) out.push(fill === undefined ? Buffer.alloc(Math.min(CHUNK, left)) : Buffer.alloc(Math.min(CHUNK, left), fill));
  return out;
}

function rate(bytes: number, run: () => void): number {
  const t0 = performance.now();
  run();
  return bytes / ((performance.now() - t0) / 1000);
}

function memcpy(bytes: number): number {
  const src = chunks(bytes, 1);
  const dst = chunks(bytes, 2); // touched: a copy into faulted-in pages
  return rate(bytes, () => src.forEach((s, i) => s.copy(dst[i])));
}

/**
 * Writing into anonymous memory never touched: the page faults and zeroing a restore cannot
 * avoid. This VM's host backs freed guest memory again lazily, so the first touch varies (DESIGN).
 */
function freshWrite(bytes: number): number {
  return rate(bytes, () => {
    for (const b of chunks(bytes)) b.fill(3);
  });
}

/** write(2) into a new tmpfs file, 8 MiB at a time: what a dump's pages file costs at best. */
function tmpfsFirstWrite(bytes: number): number {
  const chunk = Buffer.alloc(8 << 20, 7);
  const file = join('/dev/shm', `amber-bench-ceiling-${process.pid}`);
  const fd = openSync(file, 'w');
  try {
    return rate(bytes, () => {
      for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
    });
  } finally {
    closeSync(fd);
    rmSync(file);
  }
}

/**
 * Bare node start-up, the whole command `node -e 0`: the floor of any amber command (amber is a
 * node program), with its peak RSS, the floor of amber's own memory.
 */
export function bareNodeStartup(): Sample {
  return timed([process.execPath, '-e', '0']);
}

/** The ceilings of `bytes`, each measured in its own child so none inherits another's pages. */
export function measureCeilings(bytes: number): Ceilings {
  const one = (what: keyof Ceilings) => Number(child([what, String(bytes)]).trim());
  return { memcpy: one('memcpy'), freshWrite: one('freshWrite'), tmpfsFirstWrite: one('tmpfsFirstWrite') };
}

/**
 * Touches `bytes` of memory in a child and frees it: the next step gets pages the guest just
 * used, not ones its host must back again (the same start for both tools).
 */
export function prefault(bytes: number): void {
  if (bytes > 0) child(['prefault', String(bytes)]);
}

function child(args: string[]): string {
  const r = spawnSync(process.execPath, [__filename, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`bench: ${args[0]} of ${args[1]} bytes failed (${r.error?.message ?? `exit ${r.status}`})`);
  return r.stdout;
}

if (require.main === module) {
  const [what, n] = process.argv.slice(2);
  const bytes = Number(n);
  const measures: Record<string, (b: number) => number> = { memcpy, freshWrite, tmpfsFirstWrite, prefault: (b) => (chunks(b, 5), 0) };
  process.stdout.write(`${measures[what](bytes)}\n`);
}

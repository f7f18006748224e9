// The machine's own ceilings for a size, measured in a child node process (so the bench's memory
// stays flat): `node ceilings.js WHAT BYTES [DIR]` prints one rate in bytes/s.
// Also the prefault step: `node ceilings.js prefault BYTES` touches and frees that much memory.
//
// Single-stream ceilings bound a tool that moves pages on one thread (CRIU does); two-stream ones
// bound what two cores can do together (amber's dump: the task copies while a worker populates
// the pages file; its restore: UFFDIO_COPY from several threads). This machine has two cores.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from './stats';
import { cliEntry } from '../harness/paths';
import { timed } from './tools';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface Ceilings {
  memcpy: number;
  /** Writing fresh anonymous memory, one thread and two threads (each half). */
  freshWrite: number;
  freshWrite2: number;
  /** write(2) into new files in the images' directory: one file by one thread, two halves in two files by two. */
  firstWrite: number;
  firstWrite2: number;
}

const CHUNK = 256 << 20;

/** Buffers of at most CHUNK bytes adding up to `bytes` (one Buffer cannot hold 4 GiB). */
function chunks(bytes: number, fill?: number): Buffer[] {
  const out: Buffer[] = [];
  for (let left = bytes; left > 0; left -= CHUNK) out.push(fill === undefined ? Buffer.alloc(Math.min(CHUNK, left)) : Buffer.alloc(Math.min(CHUNK, left), fill));
  return out;
}

function seconds(run: () => void): number {
  const t0 = performance.now();
  run();
  return (performance.now() - t0) / 1000;
}

function memcpy(bytes: number): number {
  const src = chunks(bytes, 1);
  const dst = chunks(bytes, 2); // touched: a copy into faulted-in pages
  return bytes / seconds(() => src.forEach((s, i) => s.copy(dst[i])));
}

/**
 * Writing into anonymous memory never touched: the page faults and zeroing a restore cannot
 * avoid. This VM's host backs freed guest memory again lazily, so the first touch varies (DESIGN).
 */
function freshWriteSeconds(bytes: number): number {
  return seconds(() => {
    for (const b of chunks(bytes)) b.fill(3);
  });
}

/**
 * write(2) into a new file in dir, 8 MiB at a time: what one stream writing a pages file costs
 * at best there. One file per stream: write(2) into one tmpfs file holds its inode lock.
 */
function firstWriteSeconds(bytes: number, dir: string): number {
  const chunk = Buffer.alloc(8 << 20, 7);
  const file = join(dir, `amber-bench-ceiling-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(file, 'w', 0o600);
  try {
    return seconds(() => {
      for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
    });
  } finally {
    closeSync(fd);
    rmSync(file);
  }
}

/**
 * Bare node start-up, the whole command `node -e 0`: the floor of any amber command (amber is a
 * node program), with its peak RSS, the floor of amber's own memory. As amber's command starts
 * node (cli/bin/run.js): without NODE_EXTRA_CA_CERTS; withCaCerts: with this environment's.
 */
export function bareNodeStartup(withCaCerts = false): Sample {
  return timed([process.execPath, '-e', '0'], withCaCerts ? {} : { env: { NODE_EXTRA_CA_CERTS: undefined } });
}

/**
 * `amber --help`, the whole command: node, the one-file build and oclif up to a command's output,
 * without amber's core, its plugins or koffi. The floor of any amber command that goes through
 * oclif, which the design prescribes for the CLI.
 */
export function oclifStartup(): Sample {
  return timed([cliEntry, '--help'], { env: { NODE_EXTRA_CA_CERTS: undefined } });
}

interface TwoStreamJob {
  what: 'freshWrite' | 'firstWrite';
  bytes: number;
  dir: string;
  start: SharedArrayBuffer;
}

function oneStream(job: TwoStreamJob): number {
  // both streams start together: each waits for the go
  Atomics.wait(new Int32Array(job.start), 0, 0);
  return job.what === 'freshWrite' ? freshWriteSeconds(job.bytes) : firstWriteSeconds(job.bytes, job.dir);
}

/** Two worker threads, each doing half; the rate of the whole from the go to the later one's end. */
async function twoStreams(what: TwoStreamJob['what'], bytes: number, dir: string): Promise<number> {
  const start = new SharedArrayBuffer(4);
  const half = Math.ceil(bytes / 2 / 4096) * 4096;
  const jobs: TwoStreamJob[] = [half, bytes - half].map((b) => ({ what, bytes: b, dir, start }));
  const workers = jobs.map((job) => new Worker(__filename, { workerData: job }));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('online', resolve))));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const t0 = performance.now();
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  await Promise.all(
    workers.map((w) => new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    })),
  );
  return bytes / ((performance.now() - t0) / 1000);
}

/** The ceilings of `bytes`, each measured in its own child so none inherits another's pages; first writes into `imagesIn`. */
export function measureCeilings(bytes: number, imagesIn = '/dev/shm'): Ceilings {
  const one = (what: keyof Ceilings) => Number(child([what, String(bytes), imagesIn]).trim());
  return { memcpy: one('memcpy'), freshWrite: one('freshWrite'), freshWrite2: one('freshWrite2'), firstWrite: one('firstWrite'), firstWrite2: one('firstWrite2') };
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

async function measureHere(what: string, bytes: number, dir: string): Promise<number> {
  switch (what) {
    case 'memcpy': return memcpy(bytes);
    case 'freshWrite': return bytes / freshWriteSeconds(bytes);
    case 'freshWrite2': return twoStreams('freshWrite', bytes, dir);
    case 'firstWrite': return bytes / firstWriteSeconds(bytes, dir);
    case 'firstWrite2': return twoStreams('firstWrite', bytes, dir);
    case 'prefault': return (chunks(bytes, 5), 0);
    default: throw new Error(`ceilings: no measure '${what}'`);
  }
}

if (!isMainThread) {
  parentPort?.postMessage(oneStream(workerData as TwoStreamJob));
} else if (require.main === module) {
  const [what, n, dir] = process.argv.slice(2);
  void measureHere(what, Number(n), dir ?? '/dev/shm').then((rate) => process.stdout.write(`${rate}\n`));
}

// npm run bench: dump and restore targets with touched anonymous memory, images on tmpfs, and
// print, in the same run, what this machine's memcpy and tmpfs writes do with the same size.
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { kill, SIG } from '@amber/core';
import { amber, buildTargetsSync, cleanup, readLog, reap, sleep, startTarget, verdict } from '../harness';

const SIZES_MB = (process.env.AMBER_BENCH_SIZES ?? '256,1024,4096').split(',').map(Number);
/** Sizes of the incremental run: pre-dump, 1% of the pages rewritten, dump against the pre-dump. */
const INCR_SIZES_MB = (process.env.AMBER_BENCH_INCR_SIZES ?? '1024').split(',').filter(Boolean).map(Number);
/** CRIU 4.2 on this machine, images on tmpfs (amber issue 4): MiB -> [dump s, restore s]. */
const CRIU: Record<number, [number, number]> = { 1024: [1.0, 0.75], 4096: [8.5, 3.5] };
const SHM = '/dev/shm';

interface Run {
  /** The whole command, start to exit. */
  seconds: number;
  /** The engine's own time, from the command's summary line (no node start-up, no CLI). */
  engineSeconds: number;
  maxRssKb: number;
}

/**
 * One amber command, timed from start to exit as a user sees it (node start-up included, as
 * CRIU's figures include its own), with amber's peak RSS from its summary line.
 */
function engine(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const argv =
    args[0] === 'restore'
      ? ['restore', '-D', args[1], '-d']
      : [args[0], '-t', args[1], '-D', args[2], ...(args[3] ? ['--prev-images-dir', args[3], '--track-mem'] : [])];
  const t0 = performance.now();
  const r = amber(argv, { env, timeoutMs: 300_000 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`amber ${argv.join(' ')} failed: ${r.stderr.trim()}`);
  const rss = /peak RSS (\d+) MB/.exec(r.stdout);
  const engineSeconds = Number(/ in ([\d.]+) s/.exec(r.stdout)?.[1] ?? seconds);
  return { seconds, engineSeconds, maxRssKb: Number(rss?.[1] ?? 0) * 1024 };
}

function dumpedPids(dir: string): number[] {
  const r = amber(['show', join(dir, 'pstree.img'), '--json']);
  return (JSON.parse(r.stdout) as { entries: { pid: number }[] }).entries.map((e) => e.pid);
}

function dirSize(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

function memcpyRate(bytes: number): number {
  const src = Buffer.alloc(bytes, 1);
  const dst = Buffer.alloc(bytes);
  src.copy(dst); // fault the pages in first
  const t0 = performance.now();
  src.copy(dst);
  return bytes / ((performance.now() - t0) / 1000);
}

/**
 * Writing into anonymous memory never touched before: the page faults and zeroing a restore
 * cannot avoid (best of three: this VM's host backs guest memory lazily, and it varies).
 */
function freshMemoryRate(bytes: number): number {
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const fresh = Buffer.alloc(bytes); // calloc: fresh zero pages, mapped on first touch
    fresh.fill(3);
    best = Math.max(best, bytes / ((performance.now() - t0) / 1000));
  }
  return best;
}

/**
 * write(2) of `bytes` into a new tmpfs file, 8 MiB at a time, while as much anonymous memory is
 * held elsewhere, as a dump's target holds its own: the file needs pages nobody used lately, as
 * a dump's image does. One first write (a second one would reuse the pages the first freed).
 */
function tmpfsWriteRate(bytes: number): number {
  const held = Buffer.alloc(bytes, 1);
  const chunk = Buffer.alloc(8 << 20, 7);
  const file = join(SHM, `amber-bench-ceiling-${process.pid}`);
  const fd = openSync(file, 'w');
  const t0 = performance.now();
  for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  const rate = bytes / ((performance.now() - t0) / 1000);
  closeSync(fd);
  rmSync(file);
  held.fill(2);
  return rate;
}

/** The run with the median time; its peak RSS is the largest of all rounds. */
function median(runs: Run[]): Run {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const mid = sorted[Math.floor(sorted.length / 2)];
  return { seconds: mid.seconds, engineSeconds: mid.engineSeconds, maxRssKb: Math.max(...runs.map((x) => x.maxRssKb)) };
}

const mbps = (bytesPerSec: number) => (bytesPerSec / 1e6).toFixed(0);

async function main(): Promise<void> {
  buildTargetsSync();
  const rows: string[][] = [];
  for (const mb of SIZES_MB) {
    const bytes = mb * 2 ** 20;
    const dir = mkdtempSync(join(SHM, 'amber-bench-'));
    try {
      // Rounds after a warm-up one (five up to 1 GiB, three above); the median is reported.
      // This VM's memory speed varies from run to run: the host backs guest memory lazily.
      const dumps: Run[] = [];
      const restores: Run[] = [];
      let image = 0;
      for (let round = 0; round < (mb <= 1024 ? 6 : 4); round++) {
        rmSync(dir, { recursive: true, force: true });
        const target = await startTarget('memhog', [String(mb)], { timeoutMs: 120_000 });
        const dr = engine(['dump', String(target.pid), dir]);
        await reap(target.pid);
        image = dirSize(dir);
        const rr = engine(['restore', dir]);
        const v = await verdict(target, 120_000);
        if (!v.passed) throw new Error(`memhog ${mb} MiB did not verify after restore: ${v.lines.join(' | ')}`);
        if (round > 0) {
          dumps.push(dr);
          restores.push(rr);
        }
      }
      const d = median(dumps);
      const r = median(restores);
      const memcpy = memcpyRate(bytes);
      const fresh = freshMemoryRate(bytes);
      const tmpfs = tmpfsWriteRate(bytes);
      rows.push([
        `${mb} MiB`, d.seconds.toFixed(3), r.seconds.toFixed(3), d.engineSeconds.toFixed(2), r.engineSeconds.toFixed(2),
        mbps(bytes / d.seconds), mbps(bytes / r.seconds),
        `${(Math.max(d.maxRssKb, r.maxRssKb) / 1024).toFixed(0)} MB`, `${(image / 2 ** 20).toFixed(0)} MiB`,
        mbps(memcpy), mbps(fresh), mbps(tmpfs), (bytes / d.seconds / tmpfs).toFixed(2), (bytes / r.seconds / fresh).toFixed(2),
        (bytes / r.seconds / memcpy).toFixed(2),
        CRIU[mb] ? (d.seconds / CRIU[mb][0]).toFixed(2) : '-', CRIU[mb] ? (r.seconds / CRIU[mb][1]).toFixed(2) : '-',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await cleanup();
    }
  }
  printTable(['size', 'dump s', 'restore s', 'dump engine s', 'restore engine s', 'dump MB/s', 'restore MB/s', 'peak RSS', 'image', 'memcpy MB/s', 'fresh memory MB/s', 'tmpfs write MB/s', 'dump/tmpfs', 'restore/fresh', 'restore/memcpy', 'dump/CRIU', 'restore/CRIU'], rows);
  if (INCR_SIZES_MB.length) {
    console.log('');
    printTable(['size', 'pre-dump s', '1% dirtied, dump s', 'pages written', 'of pages', 'restore s (chain)'], await incremental());
  }
  await benchDataPaths();
  await benchTree();
}

/** pre-dump, SIGUSR2 (memhog rewrites 1% of its pages), dump --prev-images-dir, restore, verify. */
async function incremental(): Promise<string[][]> {
  const rows: string[][] = [];
  for (const mb of INCR_SIZES_MB) {
    // three rounds, the median reported (by the sum of the three times)
    const rounds: { pre: Run; fin: Run; rr: Run; written: number }[] = [];
    for (let round = 0; round < 3; round++) {
      const base = mkdtempSync(join(SHM, 'amber-bench-incr-'));
      try {
        const target = await startTarget('memhog', [String(mb)], { timeoutMs: 120_000 });
        const pre = engine(['pre-dump', String(target.pid), join(base, '1')]);
        kill(target.pid, SIG.USR2);
        while (!/^DIRTIED 1 /m.test(readLog(target))) await sleep(5);
        const fin = engine(['dump', String(target.pid), join(base, '2'), '../1']);
        await reap(target.pid);
        const rr = engine(['restore', join(base, '2')]);
        const v = await verdict(target, 120_000);
        if (!v.passed) throw new Error(`memhog ${mb} MiB did not verify after an incremental restore: ${v.lines.join(' | ')}`);
        rounds.push({ pre, fin, rr, written: statSync(join(base, '2', 'pages-1.img')).size / 4096 });
      } finally {
        rmSync(base, { recursive: true, force: true });
        await cleanup();
      }
    }
    rounds.sort((a, b) => a.pre.seconds + a.fin.seconds + a.rr.seconds - (b.pre.seconds + b.fin.seconds + b.rr.seconds));
    const { pre, fin, rr, written } = rounds[1];
    const all = (mb << 20) / 4096;
    rows.push([`${mb} MiB`, pre.seconds.toFixed(3), fin.seconds.toFixed(3), String(written), `${((written / all) * 100).toFixed(2)}%`, rr.seconds.toFixed(3)]);
  }
  return rows;
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

/**
 * The ways pages can move. Dump: the task copying into a mapping of the pages file (the default
 * on tmpfs), writev injected into the task, or /proc/PID/mem + write by amber. Restore:
 * UFFDIO_COPY by amber on every core (default), or madvise(POPULATE_WRITE) + preadv in the task.
 */
async function benchDataPaths(mb = 1024): Promise<void> {
  const dir = mkdtempSync(join(SHM, 'amber-bench-paths-'));
  const pairs = [['copy', 'uffd'], ['writev', 'preadv'], ['amber', 'uffd']] as const;
  try {
    const times: Record<string, number[]> = { copy: [], writev: [], amber: [], uffd: [], preadv: [] };
    for (let round = 0; round < 4; round++) {
      for (const [dumpVia, fill] of pairs) {
        rmSync(dir, { recursive: true, force: true });
        const target = await startTarget('memhog', [String(mb)], { timeoutMs: 120_000 });
        const d = engine(['dump', String(target.pid), dir], { AMBER_DUMP_VIA: dumpVia });
        await reap(target.pid);
        const r = engine(['restore', dir], fill === 'preadv' ? { AMBER_FILL: 'preadv' } : {});
        const v = await verdict(target, 120_000);
        if (!v.passed) throw new Error(`memhog did not verify after a ${dumpVia} dump and a ${fill} restore: ${v.lines.join(' | ')}`);
        if (round > 0) {
          times[dumpVia].push(d.engineSeconds);
          times[fill].push(r.engineSeconds);
        }
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(3);
    console.log(
      `\n${mb} MiB, engine time, median of 3 (restore by UFFDIO_COPY: of 6): dump by the task's copy into a mapping of the ` +
        `pages file ${med(times.copy)} s, by writev injected into the task ${med(times.writev)} s, by /proc/PID/mem + ` +
        `write in amber ${med(times.amber)} s; restore by UFFDIO_COPY ${med(times.uffd)} s, by populate + preadv ${med(times.preadv)} s`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cleanup();
  }
}

/** A tree of 50 processes with 4 threads each: what freezing, creating and rebuilding many tasks costs. */
async function benchTree(procs = 50, threads = 4): Promise<void> {
  const dir = mkdtempSync(join(SHM, 'amber-bench-tree-'));
  try {
    const times: [number, number][] = [];
    for (let round = 0; round < 3; round++) {
      rmSync(dir, { recursive: true, force: true });
      const target = await startTarget('forest', [String(procs), String(threads)], { timeoutMs: 60_000 });
      const d = engine(['dump', String(target.pid), dir]);
      const pids = dumpedPids(dir);
      for (const pid of pids) await reap(pid);
      const r = engine(['restore', dir]);
      const v = await verdict(target, 60_000);
      if (!v.passed) throw new Error(`forest did not verify after restore: ${v.lines.join(' | ')}`);
      times.push([d.seconds, r.seconds]);
    }
    times.sort((a, b) => a[0] + a[1] - (b[0] + b[1]));
    const [dump, restore] = times[1];
    console.log(`\ntree of ${procs} processes x ${threads} threads (median of 3, whole commands): dump ${dump.toFixed(3)} s, restore ${restore.toFixed(3)} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cleanup();
  }
}

main().catch((e: Error) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});

// The scenarios: each starts its targets itself, runs the tools in alternating rounds and checks
// that every restored process verifies its own state (memory, thread count) before it counts.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { kill, SIG } from '@amber/core';
import { cleanup, descendants, readLog, reap, sleep, startTarget, verdict, type Target } from '../harness';
import { prefault } from './ceilings';
import { alternation, summarize, type ComparisonRow, type Sample } from './stats';
import { CommandFailed, type AmberPaths, type CheckpointTool } from './tools';

const SHM = '/dev/shm';
const MiB = 2 ** 20;

export interface TargetSpec {
  /** test/targets/NAME and its arguments. */
  name: string;
  args: string[];
  /** Memory the target holds: prefaulted before each step that needs as much. */
  bytes: number;
}

async function mustVerify(target: Target, what: string): Promise<void> {
  const v = await verdict(target, 120_000);
  if (!v.passed) throw new Error(`${target.name} did not verify itself after ${what}: ${v.lines.join(' | ') || v.exit.text}`);
}

/** Kills nothing: the dump did. Reaps the dumped tree (root first: its orphans come to us). */
async function reapTree(pids: number[]): Promise<void> {
  for (const pid of pids) await reap(pid, 60_000);
}

/** One round of one tool: start, dump, reap, restore, verify. */
async function dumpRestoreRound(tool: CheckpointTool, spec: TargetSpec, imagesIn: string): Promise<{ dump: Sample; restore: Sample }> {
  const dir = mkdtempSync(join(imagesIn, `amber-bench-${tool.name}-`));
  try {
    const target = await startTarget(spec.name, spec.args, { timeoutMs: 180_000 });
    const pids = descendants(target.pid);
    prefault(spec.bytes);
    const dump = tool.dump(target.pid, dir);
    await reapTree(pids);
    prefault(spec.bytes);
    const restore = tool.restore(dir);
    await mustVerify(target, `${tool.name} restore`);
    return { dump, restore };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cleanup();
  }
}

type Measured<K extends string> = Record<K, Sample[]>;

/**
 * Runs `round` for every tool in alternating order. A CRIU that refuses is noted and left out of
 * the remaining rounds; amber failing fails the bench.
 */
async function alternate<K extends string>(
  tools: CheckpointTool[],
  rounds: number,
  keys: readonly K[],
  round: (tool: CheckpointTool) => Promise<Record<K, Sample>>,
): Promise<Map<CheckpointTool, Measured<K> | { refused: string }>> {
  const out = new Map<CheckpointTool, Measured<K> | { refused: string }>();
  for (const t of tools) out.set(t, Object.fromEntries(keys.map((k) => [k, []])) as unknown as Measured<K>);
  for (const { tool } of alternation(tools, rounds)) {
    const acc = out.get(tool);
    if (!acc || 'refused' in acc) continue;
    try {
      const r = await round(tool);
      for (const k of keys) (acc as Measured<K>)[k].push(r[k]);
    } catch (err) {
      if (tool.name !== 'CRIU' || !(err instanceof CommandFailed)) throw err;
      out.set(tool, { refused: `refused: ${err.detail}` });
    }
  }
  return out;
}

function rows<K extends string>(measured: Map<CheckpointTool, Measured<K> | { refused: string }>, labels: Record<K, string>): ComparisonRow[] {
  return (Object.keys(labels) as K[]).map((k) => {
    const row: ComparisonRow = { what: labels[k] };
    for (const [tool, m] of measured) {
      const key = tool.name === 'amber' ? 'amber' : 'criu';
      if ('refused' in m) {
        if (key === 'amber') throw new Error(`amber ${m.refused}`);
        row.criuNote = m.refused;
      } else row[key] = summarize(m[k]);
    }
    return row;
  });
}

export async function dumpRestore(tools: CheckpointTool[], rounds: number, spec: TargetSpec, label: string, imagesIn = SHM): Promise<ComparisonRow[]> {
  const m = await alternate(tools, rounds, ['dump', 'restore'] as const, (tool) => dumpRestoreRound(tool, spec, imagesIn));
  return rows(m, { dump: `dump ${label}`, restore: `restore ${label}` });
}

export const memhog = (mb: number): TargetSpec => ({ name: 'memhog', args: [String(mb)], bytes: mb * MiB });
export const forest = (procs: number, threads: number): TargetSpec => ({ name: 'forest', args: [String(procs), String(threads)], bytes: 0 });

/** `--version`, the whole command. */
export async function startup(tools: CheckpointTool[], rounds: number): Promise<ComparisonRow[]> {
  const m = await alternate(tools, rounds, ['version'] as const, async (tool) => ({ version: tool.version() }));
  return rows(m, { version: '--version (whole command)' });
}

/**
 * pre-dump, memhog rewrites 1% of its pages (SIGUSR2), dump against the pre-dump, restore of the
 * chain, verify.
 */
export async function incremental(tools: CheckpointTool[], rounds: number, mb: number, imagesIn = SHM): Promise<ComparisonRow[]> {
  const spec = memhog(mb);
  const m = await alternate(tools, rounds, ['pre', 'fin', 'restore'] as const, async (tool) => {
    const base = mkdtempSync(join(imagesIn, `amber-bench-incr-${tool.name}-`));
    try {
      mkdirSync(join(base, '1'));
      mkdirSync(join(base, '2'));
      const target = await startTarget(spec.name, spec.args, { timeoutMs: 180_000 });
      prefault(spec.bytes);
      const pre = tool.preDump(target.pid, join(base, '1'));
      kill(target.pid, SIG.USR2);
      while (!/^DIRTIED 1 /m.test(readLog(target))) await sleep(5);
      const fin = tool.dumpAfterPreDump(target.pid, join(base, '2'), '../1');
      await reap(target.pid, 60_000);
      prefault(spec.bytes);
      const restore = tool.restore(join(base, '2'));
      await mustVerify(target, `${tool.name} restore of an incremental dump`);
      return { pre, fin, restore };
    } finally {
      rmSync(base, { recursive: true, force: true });
      await cleanup();
    }
  });
  const size = `${mb} MiB`;
  return rows(m, { pre: `pre-dump ${size}`, fin: `dump ${size} after 1% rewritten`, restore: `restore ${size} (pre-dump + dump)` });
}

/**
 * amber's data paths against each other (its --pages-via / --pages-fill options), whole
 * commands, alternating: dump by the task's vmsplice + splice through a pipe of its own, by the
 * task's copy into a mapping of the pages file, by writev
 * injected into the task, by /proc/PID/mem + write in amber; restore by UFFDIO_COPY or preadv.
 */
export async function dataPaths(amber: (paths: AmberPaths) => CheckpointTool, rounds: number, mb = 1024, imagesIn = SHM): Promise<ComparisonRow[]> {
  const variants: { label: string; paths: AmberPaths }[] = [
    { label: 'task splices through a pipe, restore by UFFDIO_COPY', paths: { via: 'splice', fill: 'uffd' } },
    { label: 'task copies into a mapping, restore by UFFDIO_COPY', paths: { via: 'copy', fill: 'uffd' } },
    { label: 'writev in the task, restore by preadv in the task', paths: { via: 'writev', fill: 'preadv' } },
    { label: '/proc/PID/mem + write in amber', paths: { via: 'amber', fill: 'uffd' } },
  ];
  const spec = memhog(mb);
  const out: ComparisonRow[] = [];
  const acc = variants.map(() => ({ dump: [] as Sample[], restore: [] as Sample[] }));
  for (const { tool } of alternation(variants.map((_, i) => i), rounds)) {
    const r = await dumpRestoreRound(amber(variants[tool].paths), spec, imagesIn);
    acc[tool].dump.push(r.dump);
    acc[tool].restore.push(r.restore);
  }
  variants.forEach((v, i) => {
    out.push({ what: `dump ${mb} MiB, ${v.label}`, amber: summarize(acc[i].dump), criuNote: 'amber only' });
    out.push({ what: `restore ${mb} MiB, ${v.label}`, amber: summarize(acc[i].restore), criuNote: 'amber only' });
  });
  return out;
}

/**
 * Restores mutants of one real dump and sorts each outcome. A good outcome is either a refusal
 * in one `amber:` line (nothing left running, nothing written outside the image directory) or a
 * restore whose process then passes its own check; anything else is a finding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { ImageStore, kill, SIG } from '@amber/core';
import { amber, cliEntry, describeAmber, type AmberResult, isAlive, makeTmpDir, parentOf, procState, reap, startTarget, verdict, WORKDIR, type Target } from '../harness';
import { makeMutants, type Mutant, type MutationClass } from './mutants';

export type Outcome = 'refused' | 'restored-passed' | 'restored-as-edited' | 'restored-failed' | 'internal-error' | 'not-one-line' | 'hang' | 'left-running' | 'wrote-outside';

const RAW_PARALLEL = 3;

export const BAD_OUTCOMES: Outcome[] = ['restored-failed', 'internal-error', 'not-one-line', 'hang', 'left-running', 'wrote-outside'];

export interface MutantResult {
  mutant: Mutant;
  outcome: Outcome;
  detail: string;
  ms: number;
}

export interface FuzzReport {
  results: MutantResult[];
  seconds: number;
  byOutcome: Record<string, number>;
  byClass: Record<string, Record<string, number>>;
  /** the unmutated set restored and passed, before and after the mutants */
  controls: string[];
}

/**
 * Every file under DIR but the target's own log, with size, mode and mtime (not of a FIFO: its
 * data lives in the kernel, and restoring its queue touches it).
 */
function snapshot(dir: string, skip: string): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (p === skip) continue;
    const st = fs.lstatSync(p);
    out.push(`${name}:${st.size}:${st.isFIFO() ? '' : st.mtimeMs}:${st.mode.toString(8)}`);
    if (st.isDirectory()) out.push(...snapshot(p, skip).map((e) => `${name}/${e}`));
  }
  return out;
}

/** Removes what a restored run's self-check added to its workdir, so the next restore finds it as dumped. */
function removeAdded(dir: string, pristine: Set<string>, rel = ''): void {
  for (const name of fs.readdirSync(dir)) {
    const r = path.join(rel, name);
    const p = path.join(dir, name);
    if (!pristine.has(r)) fs.rmSync(p, { recursive: true, force: true });
    else if (fs.lstatSync(p).isDirectory()) removeAdded(p, pristine, r);
  }
}

function listAll(dir: string, rel = ''): string[] {
  return fs.readdirSync(dir).flatMap((name) => {
    const r = path.join(rel, name);
    return fs.lstatSync(path.join(dir, name)).isDirectory() ? [r, ...listAll(path.join(dir, name), r)] : [r];
  });
}

function copySet(from: string, label: string): string {
  const dir = makeTmpDir(label);
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  return dir;
}

/** The target's log as it was up to READY, so a restored run's verdict reads only its own lines. */
function resetLog(t: Target): void {
  fs.writeFileSync(t.logPath, `${t.readyLines.join('\n')}\n`);
}

/** Kills and reaps the target's pid if a restore left it (only while it is our child). */
async function stopLeftover(t: Target): Promise<boolean> {
  if (procState(t.pid) === null) return false;
  const alive = isAlive(t.pid);
  if (parentOf(t.pid) === process.pid) {
    if (alive) kill(t.pid, SIG.KILL);
    await reap(t.pid, 10_000).catch(() => undefined);
  }
  return alive;
}

/** `amber ARGS` without blocking the event loop, so several refusals can run at once. */
function amberAsync(args: string[], timeoutMs: number): Promise<AmberResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliEntry, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

interface Before {
  outside: string[];
}

function prepare(t: Target, pristine: Set<string>): Before {
  resetLog(t);
  removeAdded(t.workdir, pristine);
  return { outside: snapshot(t.workdir, t.logPath) };
}

async function classify(t: Target, mutant: Mutant | undefined, r: AmberResult, before: Before): Promise<{ outcome: Outcome; detail: string }> {
  const lines = r.stderr.trim().split('\n').filter((l) => l !== '');
  if (r.status === null) {
    await stopLeftover(t);
    return { outcome: 'hang', detail: describeAmber(['restore'], r) };
  }
  if (r.status === 0) {
    if (!isAlive(t.pid)) return { outcome: 'restored-failed', detail: `exit 0 but pid ${t.pid} is not running` };
    const v = await verdict(t).catch((e: Error) => ({ passed: false, lines: [e.message] }));
    if (v.passed) return { outcome: 'restored-passed', detail: '' };
    // A resealed mutant is a whole set by its own inventory: a byte of data flipped, an optional
    // image left out, a process dropped from pstree are edits of the set, which a restore follows.
    return { outcome: mutant?.resealed ? 'restored-as-edited' : 'restored-failed', detail: v.lines.join(' | ') };
  }
  if (await stopLeftover(t)) return { outcome: 'left-running', detail: `pid ${t.pid} still running after: ${lines.join(' | ')}` };
  if (lines.length !== 1 || !lines[0].startsWith('amber: ')) return { outcome: 'not-one-line', detail: lines.join(' | ') };
  if (/internal error/.test(lines[0])) return { outcome: 'internal-error', detail: lines[0] };
  const after = snapshot(t.workdir, t.logPath);
  if (after.join('\n') !== before.outside.join('\n')) {
    const added = after.filter((e) => !before.outside.includes(e));
    return { outcome: 'wrote-outside', detail: `${lines[0]}; changed: ${added.join(', ')}` };
  }
  return { outcome: 'refused', detail: lines[0] };
}

export interface FuzzOptions {
  count: number;
  seed: number;
  /** per restore */
  timeoutMs?: number;
  onResult?: (r: MutantResult) => void;
}

/** Dumps the `files` target (one of each kind of file, pipes, locks ...), then restores COUNT mutants of its images. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const t = await startTarget('files', [WORKDIR]);
  const original = makeTmpDir('fuzz-original');
  const d = amber(['dump', '-t', String(t.pid), '-D', original]);
  if (d.status !== 0) throw new Error(describeAmber(['dump'], d));
  await reap(t.pid);
  const pristine = new Set(listAll(t.workdir));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const controls: string[] = [];
  const control = async (when: string) => {
    const before = prepare(t, pristine);
    const c = await classify(t, undefined, amber(['restore', '-D', copySet(original, 'fuzz-control'), '-d'], { timeoutMs }), before);
    controls.push(`${when}: ${c.outcome}${c.detail ? ` (${c.detail})` : ''}`);
  };
  await control('before');
  const results: MutantResult[] = [];
  const mutants = makeMutants(original, opts.count, opts.seed).map((mutant) => {
    const dir = copySet(original, 'fuzz');
    mutant.apply(dir);
    let resealed = mutant.resealed;
    if (resealed) {
      try {
        ImageStore.reseal(dir);
      } catch {
        resealed = false; // the inventory itself was hit: stays a raw mutant
      }
    }
    return { mutant: { ...mutant, resealed }, dir };
  });
  // Raw mutants must all stop at the checks before any task is made: several at a time. Resealed
  // ones may get further (a pid, a restored process): one at a time.
  const raw = mutants.filter((m) => !m.mutant.resealed);
  const resealed = mutants.filter((m) => m.mutant.resealed);
  const batches = [
    ...Array.from({ length: Math.ceil(raw.length / RAW_PARALLEL) }, (_, i) => raw.slice(i * RAW_PARALLEL, (i + 1) * RAW_PARALLEL)),
    ...resealed.map((m) => [m]),
  ];
  for (const batch of batches) {
    const t0 = performance.now();
    const before = prepare(t, pristine);
    const runs = await Promise.all(batch.map((m) => amberAsync(['restore', '-D', m.dir, '-d'], timeoutMs)));
    const ms = (performance.now() - t0) / batch.length;
    for (const [i, m] of batch.entries()) {
      const { outcome, detail } = await classify(t, m.mutant, runs[i], before);
      const result = { mutant: m.mutant, outcome, detail, ms };
      results.push(result);
      opts.onResult?.(result);
      fs.rmSync(m.dir, { recursive: true, force: true });
    }
  }
  await control('after');
  const byOutcome: Record<string, number> = {};
  const byClass: Record<string, Record<string, number>> = {};
  for (const r of results) {
    byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
    const key: `${MutationClass}${string}` = `${r.mutant.cls}${r.mutant.resealed ? ' (resealed)' : ''}`;
    byClass[key] ??= {};
    byClass[key][r.outcome] = (byClass[key][r.outcome] ?? 0) + 1;
  }
  return { results, seconds: (performance.now() - started) / 1000, byOutcome, byClass, controls };
}

const mean = (rs: MutantResult[]): string => (rs.length ? (rs.reduce((n, r) => n + r.ms, 0) / rs.length).toFixed(0) : '-');

/** The report as lines: figures by outcome and class, then every bad outcome. */
export function describeReport(report: FuzzReport): string[] {
  const lines = [
    `${report.results.length} mutants in ${report.seconds.toFixed(1)} s; controls: ${report.controls.join('; ')}`,
    `mean ms per mutant: raw ${mean(report.results.filter((r) => !r.mutant.resealed))}, resealed ${mean(report.results.filter((r) => r.mutant.resealed))}`,
    `outcomes: ${Object.entries(report.byOutcome).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...Object.entries(report.byClass).sort().map(([cls, o]) => `  ${cls}: ${Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ')}`),
  ];
  for (const r of report.results) {
    if (BAD_OUTCOMES.includes(r.outcome)) lines.push(`BAD #${r.mutant.index} ${r.mutant.label}${r.mutant.resealed ? ' (resealed)' : ''}: ${r.outcome}: ${r.detail}`);
  }
  return lines;
}

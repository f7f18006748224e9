import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describeAmber, makeTmpDir, mapsOf, procState, sleep, spawnAmber, tracerOf, until, verdict, type AmberResult, type Target } from './index';
import { descendants } from './checks';

// Interrupting amber for real (a signal at a random moment while it works): the tree must be left
// running as it was, whatever resource the dump had in hand.

export type Signal = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'SIGQUIT';

function threadsOf(pids: number[]): number[] {
  return pids.flatMap((p) => readdirSync(`/proc/${p}/task`).map(Number));
}

/** Every thread untraced and not stopped (a detach may take a moment to show). */
export async function assertRunningUntraced(pids: number[], what: string): Promise<void> {
  const tids = threadsOf(pids);
  const ok = () => tids.every((t) => tracerOf(t) === 0 && !/^[tT]$/.test(procState(t) ?? 'gone'));
  if (await until(ok, 500)) return;
  const bad = tids.map((t) => `${t}: tracer ${tracerOf(t)} state ${procState(t)}`).join(', ');
  assert.fail(`${what}: threads not running untraced: ${bad}`);
}

/**
 * amber had done its work when the signal came: it exited 0, or it had printed its result and
 * the signal (no longer caught once the work is over) ended it on its way out.
 */
export function finishedFirst(r: AmberResult, signal: Signal): boolean {
  return r.status === 0 || (r.signal === signal && /^(Dumped|Pre-dumped|Restored) /m.test(r.stdout));
}

interface Trial {
  /** amber was still at work when the signal came (else the trial does not count). */
  interrupted: boolean;
  ms: number;
}

/**
 * Runs `amber ARGS` on the tree of `target`, waits until amber has seized the root (its TracerPid
 * is amber), waits a random 0..maxDelayMs more and sends `signal`. An interrupted amber must exit
 * non-zero with one line and leave the tree as it was.
 */
async function interruptOnce(target: Target, pids: number[], args: string[], signal: Signal, maxDelayMs: number): Promise<Trial> {
  const mapsBefore = mapsOf(pids);
  const dir = args[args.indexOf('-D') + 1];
  const t0 = Date.now();
  const run = spawnAmber(args, { timeoutMs: 60_000 });
  const seized = await until(() => tracerOf(target.pid) === run.pid || run.exited(), 30_000);
  assert.ok(seized, 'amber seized the target');
  await sleep(Math.random() * maxDelayMs);
  const late = run.exited();
  if (!late) run.child.kill(signal);
  const r = await run.done;
  const ms = Date.now() - t0;
  const how = describeAmber([...args, `(${signal})`], r);
  assert.equal(r.timedOut, false, `amber hung: ${how}`);
  await assertRunningUntraced(pids, how);
  assert.equal(mapsOf(pids), mapsBefore, `maps unchanged: ${how}`);
  if (late || finishedFirst(r, signal)) return { interrupted: false, ms };
  assert.notEqual(r.status, 0, how);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${how}`);
  assert.match(lines[0], new RegExp(`^amber: interrupted by ${signal}: pid ${target.pid} left running as it was$`), how);
  assert.ok(!existsSync(join(dir, 'inventory.img')), `no inventory.img after an interrupted dump: ${how}`);
  // the directory was there before amber: it stays, empty of what the dump wrote (pages files too)
  assert.deepEqual(readdirSync(dir), [], `nothing of the interrupted dump is left in ${dir}: ${how}`);
  return { interrupted: true, ms };
}

export async function interruptTrials(target: Target, kinds: ('dump' | 'pre-dump')[], signals: Signal[], maxDelayMs: number, want: number) {
  const pids = descendants(target.pid);
  let done = 0;
  let late = 0;
  const times: number[] = [];
  // the window for the random moment: halved whenever amber finished first, so that trials keep
  // landing inside the work however fast it has become
  let window = maxDelayMs;
  for (let i = 0; done < want; i++) {
    assert.ok(i < want * 3, `only ${done} of ${want} trials were interrupted in time (${late} finished first)`);
    const kind = kinds[i % kinds.length];
    const dir = makeTmpDir('intr');
    const args = kind === 'dump' ? ['dump', '-t', String(target.pid), '-D', dir, '--leave-running'] : ['pre-dump', '-t', String(target.pid), '-D', dir];
    const t = await interruptOnce(target, pids, args, signals[i % signals.length], window);
    if (t.interrupted) done++;
    else {
      late++;
      window = Math.max(1, window / 2);
    }
    times.push(t.ms);
  }
  const v = await verdict(target, 30_000);
  assert.ok(v.passed, v.lines.join(' | '));
  return { done, late, maxMs: Math.max(...times) };
}


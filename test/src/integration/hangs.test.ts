import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { after, test } from 'node:test';
import { ImageStore, type CoreEntry } from '@amber/core';
import {
  amber, cleanup, rewriteImage, describeAmber, isAlive, makeTmpDir, reap, sleep, spawnAmber, startTarget, tracerOf, until, verdict,
  type AmberResult, type Target,
} from '../harness';

after(cleanup);

const AMBER_LIMIT_MS = 30_000;

function assertOneLine(args: string[], r: AmberResult, pattern: RegExp): void {
  const how = describeAmber(args, r);
  assert.notEqual(r.status, null, `amber hung (killed after ${AMBER_LIMIT_MS} ms): ${how}`);
  assert.notEqual(r.status, 0, how);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${how}`);
  assert.match(lines[0], pattern, how);
  assert.doesNotMatch(lines[0], /internal error/, how);
}

async function dumpedThreads(label: string): Promise<{ t: Target; dir: string; tids: number[] }> {
  const t = await startTarget('threads');
  const tids = readdirSync(`/proc/${t.pid}/task`).map(Number).sort((a, b) => a - b);
  const dir = makeTmpDir(label);
  const d = amber(['dump', '-t', String(t.pid), '-D', dir]);
  assert.equal(d.status, 0, d.stderr);
  await reap(t.pid);
  return { t, dir, tids };
}

async function assertNothingLeft(pids: number[], what: string): Promise<void> {
  for (const p of pids) if (existsSync(`/proc/${p}`)) await reap(p, 5_000).catch(() => undefined);
  assert.deepEqual(pids.filter((p) => existsSync(`/proc/${p}`)), [], `${what}: nothing of the tree is left`);
}

test('a restore of a multi-threaded process failing at task-state or resume ends (no hang) and leaves nothing', async () => {
  const { t, dir, tids } = await dumpedThreads('hang-restore');
  for (const point of ['restore:task-state', 'restore:resume']) {
    const args = ['restore', '-D', dir, '-d'];
    const r = amber(args, { env: { AMBER_FAULT: point }, timeoutMs: AMBER_LIMIT_MS });
    assertOneLine(args, r, new RegExp(`^amber: injected fault at ${point}`));
    await assertNothingLeft(tids, point);
  }
  const r = amber(['restore', '-D', dir, '-d']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a bad sigaltstack in one thread\'s core image fails the restore with one line, no hang, nothing left', async () => {
  const { tids, dir } = await dumpedThreads('bad-sas');
  const store = ImageStore.forRead(dir);
  const victim = tids[tids.length - 1];
  const core = store.read<CoreEntry>('core', `core-${victim}`).entries[0];
  assert.ok(core.threadCore?.sas, 'threads.c gives every thread an alternate stack');
  core.threadCore!.sas!.ssSize = 16n; // below MINSIGSTKSZ: sigaltstack() says ENOMEM
  rewriteImage(store, 'core', `core-${victim}`, [core]);
  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args, { timeoutMs: AMBER_LIMIT_MS });
  assertOneLine(args, r, /sigaltstack.*ENOMEM/);
  await assertNothingLeft(tids, 'bad sigaltstack');
});

test('a dump whose multi-threaded target is killed just after the freeze ends with one line', async () => {
  let failedRuns = 0;
  for (let i = 0; i < 8; i++) {
    const t = await startTarget('threads');
    const dir = makeTmpDir('killed-target');
    const args = ['dump', '-t', String(t.pid), '-D', dir];
    const run = spawnAmber(args, { timeoutMs: AMBER_LIMIT_MS });
    assert.ok(await until(() => tracerOf(t.pid) === run.pid || run.exited(), 20_000), 'amber seized the target');
    await sleep(Math.random() * 60);
    // our own target, by pid, still alive
    if (isAlive(t.pid)) process.kill(t.pid, 'SIGKILL');
    const r = await run.done;
    assert.equal(r.timedOut, false, `amber hung: ${describeAmber(args, r)}`);
    if (r.status !== 0) {
      failedRuns++;
      assertOneLine(args, r, /^amber: /);
    }
    await reap(t.pid, 10_000);
  }
  console.log(`# ${failedRuns} of 8 dumps were cut short by the kill`);
});

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, cleanup, descendants, describeAmber, makeTmpDir, mapsOf, procState, reap, startTarget, tracerOf, until, verdict,
  type AmberResult,
} from '../harness';

after(cleanup);

/** Every AMBER_FAULT point of a dump (dump:mm-tracking runs after success and only warns). */
const DUMP_POINTS = ['dump:after-seize', 'dump:after-cores', 'dump:splice', 'dump:after-mm', 'dump:after-fs', 'dump:before-inventory'];
/** Every AMBER_FAULT point of a restore: each phase, after the threads are made, in the resume. */
const RESTORE_POINTS = [
  'restore:tree', 'restore:namespaces', 'restore:shared', 'restore:resources', 'restore:memory-task', 'restore:memory', 'restore:after-threads',
  'restore:task-state', 'restore:resume-thread', 'restore:resume',
];
const AMBER_LIMIT_MS = 30_000;

function assertInjectedFailure(args: string[], r: AmberResult, point: string): void {
  const how = describeAmber(args, r);
  assert.notEqual(r.status, null, `amber hung or was killed (limit ${AMBER_LIMIT_MS} ms): ${how}`);
  assert.notEqual(r.status, 0, how);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${how}`);
  assert.equal(lines[0], `amber: injected fault at ${point} (AMBER_FAULT)`, how);
}

const threadsOf = (pids: number[]) => pids.flatMap((p) => readdirSync(`/proc/${p}/task`).map(Number));
/** Every fd of the tasks and what it points at (a pipe the dump made and left would show). */
const fdsOf = (pids: number[]) => pids.flatMap((p) => readdirSync(`/proc/${p}/fd`).map((fd) => `${p}:${fd}:${readlinkSync(`/proc/${p}/fd/${fd}`)}`)).sort().join(' ');

test('a dump failing at any fault point leaves a multi-threaded tree running as it was', async () => {
  const t = await startTarget('forest', ['3', '3']);
  const pids = descendants(t.pid);
  const maps = mapsOf(pids);
  const fds = fdsOf(pids);
  for (const point of DUMP_POINTS) {
    const dir = makeTmpDir('fault-dump');
    // the forest's few pages amber would read itself: the splice point needs the task's own path
    const args = ['dump', '-t', String(t.pid), '-D', dir, ...(point === 'dump:splice' ? ['--pages-via', 'splice'] : [])];
    const r = amber(args, { env: { AMBER_FAULT: point }, timeoutMs: AMBER_LIMIT_MS });
    assertInjectedFailure(args, r, point);
    const tids = threadsOf(pids);
    assert.ok(
      await until(() => tids.every((tid) => tracerOf(tid) === 0 && /^[RS]$/.test(procState(tid) ?? '')), 500),
      `${point}: every thread untraced and running: ${tids.map((tid) => `${tid}:${tracerOf(tid)}:${procState(tid)}`).join(' ')}`,
    );
    assert.equal(mapsOf(pids), maps, `${point}: maps unchanged`);
    assert.equal(fdsOf(pids), fds, `${point}: fds unchanged`);
    assert.ok(!existsSync(join(dir, 'inventory.img')), `${point}: no inventory.img`);
  }
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a restore failing at any fault point leaves nothing of the tree, and the images still restore', async () => {
  const t = await startTarget('forest', ['3', '3']);
  const pids = descendants(t.pid);
  const dir = makeTmpDir('fault-restore');
  const d = amber(['dump', '-t', String(t.pid), '-D', dir]);
  assert.equal(d.status, 0, d.stderr);
  for (const p of pids) await reap(p).catch(() => undefined);
  for (const point of RESTORE_POINTS) {
    const args = ['restore', '-D', dir, '-d'];
    const r = amber(args, { env: { AMBER_FAULT: point }, timeoutMs: AMBER_LIMIT_MS });
    assertInjectedFailure(args, r, point);
    // what was made is ours to reap now (we are the subreaper of amber's descendants)
    for (const p of pids) await reap(p, 5_000).catch(() => undefined);
    const left = pids.filter((p) => existsSync(`/proc/${p}`));
    assert.deepEqual(left, [], `${point}: nothing of the tree is left`);
  }
  const r = amber(['restore', '-D', dir, '-d']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

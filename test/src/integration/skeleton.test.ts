import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  amber, cleanup, describeAmber, diffSnapshots, isAlive, makeTmpDir, procState, reap, snapshotProc, startTarget,
  verdict, WORKDIR,
} from '../harness';

after(cleanup);

function run(args: string[]) {
  const r = amber(args);
  assert.equal(r.status, 0, describeAmber(args, r));
  return r;
}

test('a dumped process is gone, comes back with its pid and its state, twice in a row', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const before = snapshotProc(t.pid);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`skeleton-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    const exit = await reap(t.pid);
    assert.equal(exit.signal, 9, `round ${round}: amber kills the tree after a dump (${exit.text})`);
    assert.equal(isAlive(t.pid), false);

    run(['restore', '-D', dir, '-d']);
    assert.ok(isAlive(t.pid), `round ${round}: pid ${t.pid} is back`);
    assert.match(procState(t.pid) ?? '', /^[RS]$/, 'restored task runs (not stopped, not traced)');
    assert.deepEqual(diffSnapshots(before, snapshotProc(t.pid)), [], `round ${round}: /proc maps, status and fds as before`);
    run(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('--leave-running takes a snapshot and leaves the process running untouched', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const before = snapshotProc(t.pid);
  const dir = makeTmpDir('leave-running');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  assert.ok(isAlive(t.pid));
  assert.match(procState(t.pid) ?? '', /^[RS]$/);
  assert.deepEqual(diffSnapshots(before, snapshotProc(t.pid)), []);
  run(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('compare reports what changed since the dump', async () => {
  const t = await startTarget('counter');
  const dir = makeTmpDir('compare');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  // counter prints a line every 0.5 s: the offset of its stdout moves on.
  await new Promise((r) => setTimeout(r, 1200));
  const args = ['compare', '-t', String(t.pid), '-D', dir];
  const c = amber(args);
  assert.equal(c.status, 1, describeAmber(args, c));
  assert.match(c.stdout, /fd 1\b.*offset/s, describeAmber(args, c));
  const json = amber([...args, '--json']);
  const diffs = JSON.parse(json.stdout) as { plugin: string; what: string }[];
  assert.ok(diffs.some((d) => d.plugin === 'fs' && d.what.startsWith('fd 1')), json.stdout);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

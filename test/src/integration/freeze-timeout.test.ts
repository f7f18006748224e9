/**
 * dump --timeout (CRIU's meaning): freezing the tree must end within the limit, or the dump fails
 * in one line and the tree runs on as it was.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, assertOneLineError, cleanup, descendants, makeTmpDir, procState, startTarget, tracerOf, until, verdict } from '../harness';

after(cleanup);

test('a tree that cannot be frozen in time (a vfork parent) fails the dump within --timeout, in one line, left running untraced', async () => {
  // the vfork child sleeps 6 s: until then its parent does not stop for ptrace
  const t = await startTarget('vfork_wait', ['6']);
  const dir = makeTmpDir('freeze-timeout');
  assert.ok(await until(() => procState(t.pid) === 'D', 5_000), 'the parent waits in vfork');
  const args = ['dump', '-D', dir, '-t', String(t.pid), '--timeout', '0.5'];
  const started = Date.now();
  const r = amber(args);
  const took = Date.now() - started;
  assertOneLineError(args, r, new RegExp(`^amber: pid ${t.pid}: the tree was not frozen within 0\\.5 s \\(--timeout\\): pid ${t.pid} \\(vfork_wait, state D\\) did not stop; it was left running$`));
  assert.ok(took < 6_000, `failed soon after its limit (${took} ms)`);
  assert.equal(existsSync(join(dir, 'inventory.img')), false, 'no image');
  for (const p of descendants(t.pid)) {
    assert.equal(tracerOf(p), 0, `pid ${p} is not traced once amber is gone`);
    assert.ok(!['t', 'T'].includes(procState(p) ?? ''), `pid ${p} is not stopped`);
  }
  assertOneLineError(['dump', '--timeout', 'soon'], amber(['dump', '-D', dir, '-t', String(t.pid), '--timeout', 'soon']), /--timeout soon: not a number of seconds/);
  // the vfork ends on time and the parent sees its child exit 7 and one SIGCHLD, as if nothing happened
  const v = await verdict(t, 20_000);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a tree that freezes within --timeout dumps as without it', async () => {
  const t = await startTarget('vfork_wait', ['0']);
  assert.ok(await until(() => procState(t.pid) === 'S', 5_000), 'the vfork is over');
  const dir = makeTmpDir('freeze-timeout-ok');
  const r = amber(['dump', '-D', dir, '-t', String(t.pid), '--timeout', '10', '--leave-running']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'inventory.img')));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { amber, cleanup, describeAmber, makeTmpDir, reap, startTarget, verdict } from '../harness';

after(cleanup);

// sigsuspend() shows its temporary mask; the thread's own comes back only when it returns.
test('a task waiting in sigsuspend keeps its own signal mask through dump --leave-running and restore', async () => {
  const t = await startTarget('sigsuspend_mask');
  const dir = makeTmpDir('sigsuspend');
  const d = amber(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  assert.equal(d.status, 0, describeAmber(['dump'], d));
  let v = await verdict(t);
  assert.ok(v.passed, `after dump --leave-running: ${v.lines.join(' | ')}`);

  const t2 = await startTarget('sigsuspend_mask');
  const dir2 = makeTmpDir('sigsuspend-restore');
  const d2 = amber(['dump', '-t', String(t2.pid), '-D', dir2]);
  assert.equal(d2.status, 0, describeAmber(['dump'], d2));
  await reap(t2.pid);
  const r = amber(['restore', '-D', dir2, '-d']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  v = await verdict(t2);
  assert.ok(v.passed, `after restore: ${v.lines.join(' | ')}`);
});

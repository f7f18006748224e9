import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, cleanup, descendants, describeAmber, isAlive, makeTmpDir, mapsOf, procState, reap, sleep, spawnAmber, startTarget,
  tracerOf, until, verdict, type AmberResult, type Target,
} from '../harness';
import { assertRunningUntraced, finishedFirst, interruptTrials as trials, type Signal } from '../harness/interrupt';

after(cleanup);

test('SIGINT/SIGTERM during dump and pre-dump of a 512 MiB process leave it running as it was', async () => {
  const t = await startTarget('memhog', ['512'], { timeoutMs: 60_000 });
  const r = await trials(t, ['dump', 'pre-dump'], ['SIGINT', 'SIGTERM'], 400, 8);
  console.log(`# memhog 512 MiB: ${r.done} interrupted, ${r.late} finished first, slowest run ${r.maxMs} ms`);
});

test('SIGINT/SIGTERM/SIGHUP/SIGQUIT during dump and pre-dump of a multi-threaded tree leave it running as it was', async () => {
  const t = await startTarget('forest', ['3', '3']);
  const r = await trials(t, ['dump', 'pre-dump', 'dump'], ['SIGINT', 'SIGTERM', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'], 60, 12);
  console.log(`# forest 3x3: ${r.done} interrupted, ${r.late} finished first, slowest run ${r.maxMs} ms`);
});

test('SIGINT/SIGTERM during a restore kill everything it created', async () => {
  const t = await startTarget('forest', ['3', '3']);
  const pids = descendants(t.pid);
  const dir = makeTmpDir('intr-restore');
  const d = amber(['dump', '-t', String(t.pid), '-D', dir]);
  assert.equal(d.status, 0, d.stderr);
  for (const p of pids) await reap(p).catch(() => undefined);
  let interrupted = 0;
  for (let i = 0; interrupted < 4; i++) {
    assert.ok(i < 12, `only ${interrupted} restores were interrupted in time`);
    const signal: Signal = i % 2 ? 'SIGTERM' : 'SIGINT';
    const args = ['restore', '-D', dir, '-d'];
    const run = spawnAmber(args, { timeoutMs: 60_000 });
    assert.ok(await until(() => existsSync(`/proc/${t.pid}`) || run.exited(), 30_000));
    await sleep(Math.random() * 40);
    const late = run.exited();
    if (!late) run.child.kill(signal);
    const r = await run.done;
    const how = describeAmber([...args, `(${signal})`], r);
    assert.equal(r.timedOut, false, `amber hung: ${how}`);
    if (late || finishedFirst(r, signal)) {
      // restored before the signal: put it away and try again
      for (const p of pids) if (isAlive(p)) process.kill(p, 'SIGKILL');
      for (const p of pids) await reap(p).catch(() => undefined);
      continue;
    }
    interrupted++;
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${how}`);
    assert.match(lines[0], new RegExp(`^amber: interrupted by ${signal}: every task the restore had created was killed$`), how);
    for (const p of pids) await reap(p, 5_000).catch(() => undefined);
    const left = pids.filter((p) => existsSync(`/proc/${p}`));
    assert.deepEqual(left, [], `nothing of the tree is left: ${how}`);
  }
  // and the images still restore
  const r = amber(['restore', '-D', dir, '-d']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  const v = await verdict({ ...t });
  assert.ok(v.passed, v.lines.join(' | '));
});


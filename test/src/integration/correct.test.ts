import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amberOk, cleanup, isAlive, makeTmpDir, reap, sleep, startTarget, WORKDIR } from '../harness';

after(cleanup);

/** Waits until cond() holds (or ms pass); returns whether it held. */
async function eventually(cond: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** The pids a dump holds (the tree can change until it is frozen). */
function dumpedPids(dir: string): number[] {
  const shown = amberOk(['show', join(dir, 'pstree.img'), '--json']);
  return (JSON.parse(shown.stdout) as { entries: { pid: number }[] }).entries.map((e) => e.pid);
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

test('a shell loop running sleep is restored and keeps looping', async () => {
  const script = 'echo READY $$; while :; do sleep 0.2; echo tick >>"$1/ticks"; done';
  const t = await startTarget('bash-loop', ['-c', script, 'bash', WORKDIR], { binary: '/bin/bash' });
  const ticks = join(t.workdir, 'ticks');
  assert.ok(await eventually(() => lines(ticks).length >= 2, 5000), 'the loop ticks before the dump');
  const dir = makeTmpDir('bash-loop-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of dumpedPids(dir)) await reap(pid);
  const atDump = lines(ticks).length;
  amberOk(['restore', '-D', dir, '-d']);
  assert.ok(isAlive(t.pid), 'the shell is back with its pid');
  assert.ok(await eventually(() => lines(ticks).length >= atDump + 5, 8000), `the loop goes on after restore (${lines(ticks).length} ticks, ${atDump} at dump)`);
});

test('sleep 300 is restored with its pid and /proc/PID/exe', async () => {
  const t = await startTarget('sleep-300', ['-c', 'echo READY $$; exec sleep 300'], { binary: '/bin/sh' });
  assert.ok(await eventually(() => readlinkSync(`/proc/${t.pid}/exe`).endsWith('/sleep'), 5000), 'sh has exec\'d sleep');
  const exe = readlinkSync(`/proc/${t.pid}/exe`);
  const dir = makeTmpDir('sleep-300-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d']);
  assert.ok(isAlive(t.pid), 'sleep is back with its pid');
  assert.equal(readlinkSync(`/proc/${t.pid}/exe`), exe);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
});

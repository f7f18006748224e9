import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, amberOk, cleanup, cliEntry, describeAmber, isAlive, makeTmpDir, reap, startTarget, verdict } from '../harness';

after(cleanup);

const run = amberOk;

for (const asNobody of [false, true]) {
  const who = asNobody ? 'uid 65534' : 'root';
  test(`timers, limits, umask, personality, scheduling, capabilities and pending signals come back (${who})`, async () => {
    const t = await startTarget('state', asNobody ? ['--as-nobody'] : [], asNobody ? { owner: 65534 } : {});
    const dir = makeTmpDir('state');
    run(['dump', '-t', String(t.pid), '-D', dir]);
    await reap(t.pid);
    // a user restoring through sudo may bring back their own processes only
    run(['restore', '-D', dir, '-d'], asNobody ? { SUDO_UID: '65534', SUDO_GID: '65534' } : undefined);
    run(['compare', '-t', String(t.pid), '-D', dir]);
    const v = await verdict(t);
    assert.ok(v.passed, `state's own checks: ${v.lines.join(' | ')}`);
  });
}

test('a user restoring through sudo cannot bring back a process of root', async () => {
  const t = await startTarget('state');
  const dir = makeTmpDir('state-sudo');
  run(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args, { env: { SUDO_UID: '1000', SUDO_GID: '1000' } });
  assert.equal(r.status, 1, describeAmber(args, r));
  assert.match(r.stderr, new RegExp(`^amber: pid ${t.pid} would run as uid 0.*you \\(uid 1000\\) may only restore processes of your own`));
  assert.equal(isAlive(t.pid), false, 'nothing was created');
});

test('stacked seccomp filters and no_new_privs come back, twice', async () => {
  const t = await startTarget('seccomp');
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`seccomp-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    const crit = spawnSync('crit', ['decode', '-i', join(dir, 'seccomp.img')], { encoding: 'utf8' });
    assert.equal(crit.status, 0, crit.stderr);
    assert.equal((JSON.parse(crit.stdout) as { entries: { seccomp_filters: unknown[] }[] }).entries[0].seccomp_filters.length, 2);
    await reap(t.pid);
    run(['restore', '-D', dir, '-d']);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `seccomp's own checks: ${v.lines.join(' | ')}`);
});

test('a hard limit above what amber itself may give is lowered to amber\'s, with a warning naming it', async () => {
  const t = await startTarget('memhog', ['1']);
  const set = spawnSync('prlimit', ['--pid', String(t.pid), '--core=1024:4096'], { encoding: 'utf8' });
  assert.equal(set.status, 0, set.stderr);
  const dir = makeTmpDir('rlimit-clip');
  run(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  // amber (and so the tasks it makes) with a hard core limit of 512: without CAP_SYS_RESOURCE
  // the restored task cannot get 4096 back
  const r = spawnSync('prlimit', ['--core=512:512', '--', process.execPath, cliEntry, 'restore', '-D', dir, '-d'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `restore under a lower limit: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`warning: pid ${t.pid}: resource limit 4 had hard limit 4096, restored as 512 \\(raising it needs CAP_SYS_RESOURCE\\)`));
  const line = readFileSync(`/proc/${t.pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
  assert.match(line ?? '', /^Max core file size\s+512\s+512\s+bytes/, 'soft 1024 clipped to the new hard 512');
  const v = await verdict(t);
  assert.ok(v.passed, `memhog's own check: ${v.lines.join(' | ')}`);
});

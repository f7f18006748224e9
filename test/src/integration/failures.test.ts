import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import {
  amber, assertOneLineError, cleanup, describeAmber, diffSnapshots, isAlive, makeTmpDir, procState, reap, snapshotProc, startTarget, verdict, WORKDIR,
} from '../harness';

after(cleanup);

async function dumpedSkeleton(label: string) {
  const t = await startTarget('skeleton', [WORKDIR]);
  const dir = makeTmpDir(label);
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assert.equal(r.status, 0, describeAmber(args, r));
  await reap(t.pid);
  return { t, dir };
}

for (const point of ['dump:after-seize', 'dump:after-mm', 'dump:after-fs']) {
  test(`a dump failing at ${point} leaves the target running and unharmed`, async () => {
    const t = await startTarget('skeleton', [WORKDIR]);
    const dir = makeTmpDir('fault');
    const args = ['dump', '-t', String(t.pid), '-D', dir];
    const r = amber(args, { env: { AMBER_FAULT: point } });
    assertOneLineError(args, r, /injected fault/);
    assert.ok(isAlive(t.pid));
    assert.match(procState(t.pid) ?? '', /^[RS]$/);
    assert.ok(!readdirSync(dir).includes('inventory.img'), 'an interrupted dump never looks complete');
    const v = await verdict(t);
    assert.ok(v.passed, v.lines.join(' | '));
  });
}

test('an fd kind no plugin handles stops the dump with one line, and the target keeps running', async () => {
  const t = await startTarget('busy_fd');
  const dir = makeTmpDir('unclaimed');
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assertOneLineError(args, r, new RegExp(`fd 100 of pid ${t.pid} is anon_inode:\\[userfaultfd\\]`));
  assert.ok(isAlive(t.pid));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('dumping a pid that does not exist is one clear line', () => {
  const args = ['dump', '-t', '4194303', '-D', makeTmpDir('nopid')];
  assertOneLineError(args, amber(args), /pid 4194303: no such process/);
});

test('restoring onto a busy pid fails clearly and leaves nothing behind', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const dir = makeTmpDir('busy');
  const d = amber(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  assert.equal(d.status, 0, d.stderr);
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amber(args), new RegExp(`pid ${t.pid} is in use by 'skeleton'`));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a restore failing half-way kills what it created', async () => {
  const { t, dir } = await dumpedSkeleton('restore-fault');
  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args, { env: { AMBER_FAULT: 'restore:memory' } });
  assertOneLineError(args, r, /injected fault/);
  assert.equal(isAlive(t.pid), false, 'no half-restored task is left running');
  await reap(t.pid).catch(() => undefined);
  // and the images are still good
  const again = amber(args);
  assert.equal(again.status, 0, describeAmber(args, again));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('corrupt images give one line naming the file', async () => {
  const { dir } = await dumpedSkeleton('corrupt');
  const core = readdirSync(dir).find((f) => /^core-\d+\.img$/.test(f))!;
  const cases: [string, (d: string) => void, RegExp][] = [
    ['truncated', (d) => truncateSync(join(d, core), 30), new RegExp(core.replace('.', '\\.'))],
    ['wrong magic', (d) => { const b = readFileSync(join(d, 'pstree.img')); b.writeUInt32LE(0x12345678, 4); writeFileSync(join(d, 'pstree.img'), b); }, /pstree\.img: .*(magic|checksum)/],
    ['no inventory', (d) => truncateSync(join(d, 'inventory.img'), 0), /inventory\.img/],
  ];
  for (const [what, spoil, pattern] of cases) {
    const copy = makeTmpDir(`corrupt-${what.replace(' ', '-')}`);
    for (const f of readdirSync(dir)) copyFileSync(join(dir, f), join(copy, f));
    spoil(copy);
    const args = ['restore', '-D', copy, '-d'];
    assertOneLineError(args, amber(args), pattern);
  }
});

/** A 2 MiB tmpfs of the test's own, mounted for `body` and unmounted after. */
async function withTinyTmpfs(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = makeTmpDir('tiny-tmpfs');
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'amber-test', dir], { encoding: 'utf8' });
  assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
  try {
    await body(dir);
  } finally {
    spawnSync('umount', [dir]);
  }
}

/** An 8 MiB ext4 of the test's own (a loop device over a file), mounted for `body` and unmounted after. */
async function withTinyExt4(body: (dir: string) => Promise<void>): Promise<void> {
  const image = join(makeTmpDir('tiny-ext4-image'), 'fs.img');
  writeFileSync(image, '');
  truncateSync(image, 8 << 20);
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-m', '0', image], { encoding: 'utf8' });
  assert.equal(mk.status, 0, `mkfs.ext4: ${mk.stderr}`);
  const dir = makeTmpDir('tiny-ext4');
  const m = spawnSync('mount', ['-o', 'loop', image, dir], { encoding: 'utf8' });
  assert.equal(m.status, 0, `mount ext4: ${m.stderr}`);
  try {
    await body(dir);
  } finally {
    spawnSync('umount', [dir]);
  }
}

for (const [fs, withTinyFs] of [['tmpfs', withTinyTmpfs], ['ext4', withTinyExt4]] as const)
for (const [label, env, pattern, via] of [
  ['is refused before a page moves', {}, /has no room for \d+ bytes of pages/, []],
  ['stops the task\'s splice at its ENOSPC', { AMBER_FAULT: 'dump:room-check' }, /moving its pages into .* stopped at 0x[0-9a-f]+: splice failed: ENOSPC/, ['--pages-via', 'splice']],
  ['stops the task\'s own copy at its SIGBUS', { AMBER_FAULT: 'dump:room-check' }, /copying its pages into .* stopped at 0x[0-9a-f]+: SIGBUS/, ['--pages-via', 'copy']],
] as const) {
  test(`a dump onto a full ${fs} ${label}: one line, and the target runs on unharmed`, async () => {
    await withTinyFs(async (dir) => {
      // a SIGBUS handler and SIGSEGV ignored: a fault forced on the task would reset both
      const t = await startTarget('memhog', ['16', 'fault-handlers']);
      const before = snapshotProc(t.pid);
      const args = ['dump', '-t', String(t.pid), '-D', dir, ...via];
      const r = amber(args, { env });
      assertOneLineError(args, r, pattern);
      assert.ok(isAlive(t.pid));
      assert.match(procState(t.pid) ?? '', /^[RS]$/);
      assert.deepEqual(diffSnapshots(before, snapshotProc(t.pid)), [], 'maps, status (signal masks and handlers too) and fds as before');
      const v = await verdict(t);
      assert.ok(v.passed, v.lines.join(' | '));
    });
  });
}

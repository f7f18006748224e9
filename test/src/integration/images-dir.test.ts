import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, assertOneLineError, cleanup, cliEntry, describeAmber, isAlive, makeTmpDir, procState, reap, sleep, startTarget, verdict, WORKDIR, type AmberResult, type Target,
} from '../harness';

after(cleanup);

async function assertUnharmed(t: Target): Promise<void> {
  assert.ok(isAlive(t.pid), `pid ${t.pid} is alive`);
  assert.match(procState(t.pid) ?? '', /^[RS]$/, 'running, not stopped');
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
}

/** Every entry under DIR (recursively), with its size: to prove nothing changed. */
function tree(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    out.push(`${name}:${st?.size ?? 'dangling'}:${st?.mtimeMs ?? ''}`);
    if (st?.isDirectory()) out.push(...tree(p).map((e) => `${name}/${e}`));
  }
  return out;
}

test('a symlink and a hard link planted in the image directory are never written through', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const victims = makeTmpDir('victims');
  const soft = join(victims, 'soft-target');
  const hard = join(victims, 'hard-target');
  writeFileSync(soft, 'precious 1\n');
  writeFileSync(hard, 'precious 2\n');
  const before = tree(victims);
  for (const plant of ['symlink', 'hardlink'] as const) {
    const dir = makeTmpDir(`planted-${plant}`);
    if (plant === 'symlink') symlinkSync(soft, join(dir, 'pages-1.img'));
    else linkSync(hard, join(dir, `core-${t.pid}.img`));
    const args = ['dump', '-t', String(t.pid), '-D', dir, '--leave-running'];
    const name = plant === 'symlink' ? 'pages-1\\.img' : `core-${t.pid}\\.img`;
    assertOneLineError(args, amber(args), new RegExp(`${dir} already holds images of an unfinished dump \\(${name}, 1 image\\): choose an empty directory`));
    assert.deepEqual(readdirSync(dir), [plant === 'symlink' ? 'pages-1.img' : `core-${t.pid}.img`], 'nothing added');
  }
  assert.deepEqual(tree(victims), before, 'the link targets are unchanged');
  assert.equal(readFileSync(soft, 'utf8'), 'precious 1\n');
  assert.equal(readFileSync(hard, 'utf8'), 'precious 2\n');
  await assertUnharmed(t);
});

test('a directory others can write, or owned by another user, is refused with one line', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const open = makeTmpDir('group-writable');
  chmodSync(open, 0o770);
  let args = ['dump', '-t', String(t.pid), '-D', open, '--leave-running'];
  assertOneLineError(args, amber(args), new RegExp(`${open}: writable by its group \\(mode 770\\)`));
  const world = makeTmpDir('world-writable');
  chmodSync(world, 0o1777);
  args = ['dump', '-t', String(t.pid), '-D', world, '--leave-running'];
  assertOneLineError(args, amber(args), new RegExp(`${world}: writable by others \\(mode 1777\\)`));
  const foreign = makeTmpDir('foreign');
  chownSync(foreign, 65534, 65534);
  args = ['dump', '-t', String(t.pid), '-D', foreign, '--leave-running'];
  assertOneLineError(args, amber(args), new RegExp(`${foreign}: owned by uid 65534, not by the caller \\(uid 0\\)`));
  for (const d of [open, world, foreign]) assert.deepEqual(readdirSync(d), [], `${d} stays empty`);
  await assertUnharmed(t);
});

test('a dump of a missing pid leaves no directory behind; an existing one is left as it was', () => {
  const base = makeTmpDir('nopid');
  const fresh = join(base, 'a', 'b');
  let args = ['dump', '-t', '4194303', '-D', fresh];
  assertOneLineError(args, amber(args), /pid 4194303: no such process/);
  assert.deepEqual(readdirSync(base), [], 'the directories amber made are gone');
  const existing = makeTmpDir('nopid-existing');
  writeFileSync(join(existing, 'notes.txt'), 'mine\n');
  args = ['dump', '-t', '4194303', '-D', existing];
  assertOneLineError(args, amber(args), /no such process/);
  assert.deepEqual(readdirSync(existing), ['notes.txt']);
});

for (const [command, point] of [['dump', 'dump:after-mm'], ['dump', 'dump:after-fs'], ['pre-dump', 'dump:after-mm'], ['dump', 'dump:after-seize']] as const) {
  test(`a ${command} failing at ${point} removes what it wrote, and only that`, async () => {
    const t = await startTarget('skeleton', [WORKDIR]);
    const base = makeTmpDir('failed');
    const fresh = join(base, 'set');
    let args = [command, '-t', String(t.pid), '-D', fresh];
    assertOneLineError(args, amber(args, { env: { AMBER_FAULT: point } }), /injected fault/);
    assert.deepEqual(readdirSync(base), [], 'the directory amber made is gone');
    const existing = makeTmpDir('failed-existing');
    writeFileSync(join(existing, 'notes.txt'), 'mine\n');
    args = [command, '-t', String(t.pid), '-D', existing];
    assertOneLineError(args, amber(args, { env: { AMBER_FAULT: point } }), /injected fault/);
    assert.deepEqual(readdirSync(existing), ['notes.txt'], 'only what the dump wrote is removed');
    await assertUnharmed(t);
  });
}

test('a refused dump (an fd no plugin handles) leaves an empty directory behind it', async () => {
  const t = await startTarget('busy_fd');
  const base = makeTmpDir('refused');
  const args = ['dump', '-t', String(t.pid), '-D', join(base, 'set')];
  assertOneLineError(args, amber(args), /which no plugin can dump/);
  assert.deepEqual(readdirSync(base), []);
  await assertUnharmed(t);
});

test('a dump into a directory holding another dump is refused and the old set is untouched', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const dir = makeTmpDir('reused');
  const first = amber(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  assert.equal(first.status, 0, first.stderr);
  const before = tree(dir);
  const images = readdirSync(dir).filter((f) => f.endsWith('.img') && f !== 'inventory.img').length;
  for (const command of ['dump', 'pre-dump']) {
    const args = [command, '-t', String(t.pid), '-D', dir, '--leave-running'].filter((a) => command === 'dump' || a !== '--leave-running');
    assertOneLineError(args, amber(args), new RegExp(`${dir} already holds a dump \\(inventory\\.img, ${images} images\\): choose an empty directory`));
  }
  assert.deepEqual(tree(dir), before);
  // a pre-dump chain still works: each level in its own directory, the parent named relative to -D
  const chain = makeTmpDir('chain');
  assert.equal(amber(['pre-dump', '-t', String(t.pid), '-D', join(chain, '1')]).status, 0);
  const last = amber(['dump', '-t', String(t.pid), '-D', join(chain, '2'), '--prev-images-dir', '../1']);
  assert.equal(last.status, 0, last.stderr);
  await reap(t.pid);
  const r = amber(['restore', '-D', join(chain, '2'), '-d']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a relative -D means the same directory for dump, pre-dump, compare, show and restore', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const cwd = makeTmpDir('relative');
  const run = (args: string[]): AmberResult => {
    const r = amber(args, { cwd });
    assert.equal(r.status, 0, describeAmber(args, r));
    return r;
  };
  run(['pre-dump', '-t', String(t.pid), '-D', 'sets/1']);
  run(['dump', '-t', String(t.pid), '-D', 'sets/2', '--prev-images-dir', '../1', '--leave-running']);
  assert.ok(existsSync(join(cwd, 'sets', '2', 'inventory.img')));
  const cmp = run(['compare', '-t', String(t.pid), '-D', 'sets/2']);
  assert.match(cmp.stdout, /matches/);
  assert.match(run(['show', 'sets/2']).stdout, /pstree\.img/);
  // the task is killed by a plain dump; restore from a relative -D (with a relative parent link)
  run(['dump', '-t', String(t.pid), '-D', 'sets/3', '--prev-images-dir', '../2']);
  await reap(t.pid);
  run(['restore', '-D', 'sets/3', '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('two dumps of one pid at once: the second says the pid is being checkpointed, the first succeeds', async () => {
  // enough memory that the first dump still holds its lock when the test looks (a small target's
  // whole dump took 0.07 s, and the test once missed it)
  const t = await startTarget('memhog', ['256'], { timeoutMs: 60_000 });
  const dir1 = makeTmpDir('concurrent-1');
  const dir2 = makeTmpDir('concurrent-2');
  const first = spawn(process.execPath, [cliEntry, 'dump', '-t', String(t.pid), '-D', dir1, '--leave-running'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let firstErr = '';
  first.stderr.on('data', (b: Buffer) => (firstErr += b.toString()));
  const firstDone = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
  const lock = `/run/amber/dump-${t.pid}.lock`;
  const deadline = Date.now() + 20_000;
  // a lock for this pid may be left from an amber an earlier test killed (pids are reused): wait
  // for the first dump's own
  const heldByFirst = () => {
    try {
      return readFileSync(lock, 'utf8').startsWith(`${first.pid} `);
    } catch {
      return false;
    }
  };
  while (!heldByFirst()) {
    assert.ok(Date.now() < deadline, 'the first dump took its lock');
    await sleep(1);
  }
  // hold the first dump where it is (our own child, by its pid) while the second one tries
  process.kill(first.pid!, 'SIGSTOP');
  const args = ['dump', '-t', String(t.pid), '-D', dir2, '--leave-running'];
  const second = amber(args);
  process.kill(first.pid!, 'SIGCONT');
  assertOneLineError(args, second, new RegExp(`pid ${t.pid} is (being checkpointed by amber pid ${first.pid}|already traced by pid ${first.pid})`));
  assert.equal(await firstDone, 0, `first dump: ${firstErr}`);
  assert.ok(existsSync(join(dir1, 'inventory.img')));
  assert.deepEqual(readdirSync(dir2), []);
  assert.ok(!existsSync(lock), 'the lock is released');
  await assertUnharmed(t);
});

test('a lock left by a killed amber is stale and does not block a dump', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  mkdirSync('/run/amber', { recursive: true, mode: 0o700 });
  // a holder that is gone (no such pid can exist)
  const lock = `/run/amber/dump-${t.pid}.lock`;
  writeFileSync(lock, '4194303 12345\n', { mode: 0o600 });
  try {
    const dir = makeTmpDir('stale-lock');
    const r = amber(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(lock));
  } finally {
    rmSync(lock, { force: true });
  }
  await assertUnharmed(t);
});

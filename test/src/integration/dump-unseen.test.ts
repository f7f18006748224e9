import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amberOk, cleanup, isAlive, makeTmpDir, startTarget, verdict } from '../harness';

after(cleanup);

async function dumpLeavingRunning(workdir: string): Promise<void> {
  const t = await startTarget('dump_unseen', [workdir], { workdir });
  const dir = makeTmpDir('dump-unseen-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  assert.ok(isAlive(t.pid));
  // what was read through mappings of the task's own descriptions did reach the images
  const images = readdirSync(dir).map((n) => readFileSync(join(dir, n)));
  for (const text of ['unlinked while open', 'unlinked while mapped shared', 'memfd data']) {
    assert.ok(images.some((b) => b.includes(text)), `"${text}" is in an image`);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `dump_unseen's own checks: ${v.lines.join(' | ')}`);
}

// A --leave-running dump must be invisible to the target: no fanotify or inotify event on a file
// it holds open, maps shared or private, holds unlinked, on its cwd or its executable.
test('a --leave-running dump generates no fanotify or inotify event on anything the target holds', async () => {
  await dumpLeavingRunning(makeTmpDir('dump-unseen'));
});

// The same with its cwd the root of a mount (a tmpfs of the test's own): amber must not open a
// mount's root to turn a watch's file handle into a path.
test('... nor on a watched directory that is the root of its mount', async () => {
  const workdir = makeTmpDir('dump-unseen-mount');
  const w = join(workdir, 'w');
  mkdirSync(w, { mode: 0o700 });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'amber-test', w], { encoding: 'utf8' });
  assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
  try {
    await dumpLeavingRunning(workdir);
  } finally {
    spawnSync('umount', ['-l', w]);
  }
});

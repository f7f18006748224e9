import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, amberOk, cleanup, critDecode, describeAmber, descendants, isAlive, makeTmpDir, reap, startTarget, verdict, WORKDIR } from '../harness';

after(cleanup);

async function roundTrip(kind: string) {
  const t = await startTarget('fs_edge', [kind, WORKDIR]);
  const dir = makeTmpDir(`fs-edge-${kind}`);
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  return { t, dir };
}

async function restoreAndCheck(t: Awaited<ReturnType<typeof roundTrip>>['t'], dir: string) {
  amberOk(['restore', '-D', dir, '-d']);
  assert.ok(isAlive(t.pid), 'restored');
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `fs_edge's own checks: ${v.lines.join(' | ')}`);
}

test('an inotify watch on a file removed since (still open) comes back on the re-created file', async () => {
  const { t, dir } = await roundTrip('inotify');
  await restoreAndCheck(t, dir);
});

test('an inotify watch on a removed file that only a mapping holds is refused at dump with one line; the target is unharmed', async () => {
  const t = await startTarget('fs_edge', ['inotify-mapped', WORKDIR]);
  const dir = makeTmpDir('fs-edge-inotify-mapped');
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assert.notEqual(r.status, 0, describeAmber(args, r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, describeAmber(args, r));
  assert.match(lines[0], new RegExp(`^amber: fd \\d+ of pid ${t.pid} is an inotify watching ${t.workdir}/mapped \\(inode \\d+\\), removed since and not open in pid ${t.pid}; amber cannot restore that watch; nothing was changed$`));
  assert.ok(isAlive(t.pid));
  const v = await verdict(t);
  assert.ok(v.passed, `fs_edge's own checks: ${v.lines.join(' | ')}`);
});

test('an open device node that was removed comes back with its device, owner and mode; a failed restore leaves no node', async () => {
  const { t, dir } = await roundTrip('device');
  const args = ['restore', '-D', dir, '-d'];
  const failed = amber(args, { env: { AMBER_FAULT: 'restore:memory' } });
  assert.notEqual(failed.status, 0, describeAmber(args, failed));
  assert.match(failed.stderr, /injected fault/);
  await reap(t.pid).catch(() => undefined);
  assert.deepEqual(readdirSync(t.workdir).filter((n) => n.includes('full-node')), [], 'no node left after the failed restore');
  await restoreAndCheck(t, dir);
});

test('a 2 GiB sparse unlinked file with 8 KiB of data is saved by its extents, within the default ghost limit', async () => {
  const { t, dir } = await roundTrip('sparse');
  const ghosts = readdirSync(dir).filter((n) => n.startsWith('ghost-file-'));
  assert.equal(ghosts.length, 1);
  assert.ok(statSync(join(dir, ghosts[0])).size < 64 * 1024, `the ghost image holds the data only: ${statSync(join(dir, ghosts[0])).size} bytes`);
  const img = critDecode(join(dir, ghosts[0]));
  assert.equal(img.entries[0].chunks, true, 'CRIU chunks');
  assert.equal(Number(img.entries[0].size), 2 ** 31);
  assert.equal(img.entries.length, 3, `the ghost entry and two chunks: ${JSON.stringify(img.entries.map((e) => ({ ...e, extra: undefined })))}`);
  await restoreAndCheck(t, dir);
});

test("an epoll watching an eventfd that only a child still holds comes back watching the child's eventfd", async () => {
  const t = await startTarget('fs_edge', ['epoll', WORKDIR]);
  const pids = descendants(t.pid);
  assert.equal(pids.length, 2, 'the target and its child');
  const dir = makeTmpDir('fs-edge-epoll');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of pids) await reap(pid);
  amberOk(['restore', '-D', dir, '-d']);
  for (const pid of pids) assert.ok(isAlive(pid), `pid ${pid} is back`);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `fs_edge's own checks: ${v.lines.join(' | ')}`);
});

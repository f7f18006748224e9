import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, cleanup, describeAmber, diffSnapshots, isAlive, makeTmpDir, reap, snapshotProc, startTarget, verdict, WORKDIR,
  amberOk, critDecode,
} from '../harness';

after(cleanup);

const run = amberOk;

const crit = critDecode;

test('pipes, FIFOs, unlinked files, eventfd, timerfd, signalfd, epoll, inotify, memfd and locks come back, twice in a row', async () => {
  const t = await startTarget('files', [WORKDIR]);
  const before = snapshotProc(t.pid);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`files-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    const exit = await reap(t.pid);
    assert.equal(exit.signal, 9, `round ${round}: ${exit.text}`);
    run(['restore', '-D', dir, '-d']);
    assert.ok(isAlive(t.pid), `round ${round}: pid ${t.pid} is back`);
    // a restored pipe is a new pipe: only its inode number may change
    const diffs = diffSnapshots(before, snapshotProc(t.pid)).filter((d) => !/: link pipe:\[\d+\] -> pipe:\[\d+\]$/.test(d));
    assert.deepEqual(diffs, [], `round ${round}: fd table as before`);
    run(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('--leave-running leaves pipe and FIFO contents in place', async () => {
  const t = await startTarget('files', [WORKDIR]);
  const dir = makeTmpDir('files-leave');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  run(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test("crit decodes every image of the dump, with the pipe's 10 KiB and the ghost file's contents", async () => {
  const t = await startTarget('files', [WORKDIR]);
  const dir = makeTmpDir('files-crit');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  const images = readdirSync(dir).filter((f) => f.endsWith('.img') && !f.startsWith('pages-'));
  for (const f of images) crit(join(dir, f));
  for (const needed of ['pipes-data.img', 'fifo-data.img', 'memfd.img', 'file-locks.img']) assert.ok(images.includes(needed), `${needed} in ${images.join(' ')}`);
  const pipes = crit(join(dir, 'pipes-data.img')).entries as { bytes: number; size: number }[];
  assert.deepEqual(pipes.map((p) => [p.bytes, p.size]), [[10 * 1024, 128 * 1024]]);
  const files = crit(join(dir, 'files.img')).entries as { type: string }[];
  const kinds = new Set(files.map((f) => f.type));
  for (const k of ['PIPE', 'FIFO', 'EVENTFD', 'EVENTPOLL', 'INOTIFY', 'SIGNALFD', 'TIMERFD', 'MEMFD']) assert.ok(kinds.has(k), `${k} in files.img: ${[...kinds].join(' ')}`);
  const locks = crit(join(dir, 'file-locks.img')).entries;
  assert.equal(locks.length, 2, JSON.stringify(locks));
  const ghosts = images.filter((f) => f.startsWith('ghost-file-'));
  assert.equal(ghosts.length, 1);
  const ghost = crit(join(dir, ghosts[0])).entries[0] as { extra: string };
  assert.equal(Buffer.from(ghost.extra, 'base64').toString(), 'this file has no name any more');
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('an unlinked file above --ghost-limit stops the dump with one line, and the target keeps running', async () => {
  const t = await startTarget('files', [WORKDIR]);
  const dir = makeTmpDir('files-ghost-limit');
  const args = ['dump', '-t', String(t.pid), '-D', dir, '--ghost-limit', '8'];
  const r = amber(args);
  assert.notEqual(r.status, 0, describeAmber(args, r));
  assert.equal(r.stderr.trim().split('\n').length, 1, describeAmber(args, r));
  assert.match(r.stderr, new RegExp(`^amber: fd \\d+ of pid ${t.pid} is the unlinked file .*ghost.*--ghost-limit`), describeAmber(args, r));
  assert.ok(!readdirSync(dir).includes('inventory.img'));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('an unsupported fd kind is refused naming pid, fd, kind and what a memory-only dump does', async () => {
  const t = await startTarget('busy_fd');
  const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('files-unsupported')];
  const r = amber(args);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`fd 100 of pid ${t.pid} is anon_inode:\\[userfaultfd\\].*--only mm --leave-running makes a memory-only snapshot`), describeAmber(args, r));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

for (const kind of ['io_uring', 'perf_event']) {
  test(`an ${kind} fd is refused naming pid, fd and kind, and the target keeps running`, async () => {
    const t = await startTarget('busy_fd', [kind]);
    const dir = makeTmpDir(`files-unsupported-${kind}`);
    const args = ['dump', '-t', String(t.pid), '-D', dir];
    const r = amber(args);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, describeAmber(args, r));
    assert.match(r.stderr, new RegExp(`^amber: fd 100 of pid ${t.pid} is anon_inode:\\[${kind}\\].*keeps running`), describeAmber(args, r));
    assert.ok(!readdirSync(dir).includes('inventory.img'));
    assert.ok(isAlive(t.pid));
    const v = await verdict(t);
    assert.ok(v.passed, v.lines.join(' | '));
  });
}

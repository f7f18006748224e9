import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, cleanup, describeAmber, isAlive, makeTmpDir, reap, startTarget, verdict, WORKDIR, amberOk, critDecode, descendants } from '../harness';

after(cleanup);

const run = amberOk;

const crit = critDecode;


test('pidfds, fanotify marks, an OFD lock, fd owners, a closed epoll target and an unlinked file opened twice come back, twice in a row', async () => {
  const t = await startTarget('files_more', [WORKDIR]);
  const pids = descendants(t.pid);
  assert.equal(pids.length, 2);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`files-more-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    for (const pid of pids) await reap(pid);
    run(['restore', '-D', dir, '-d']);
    for (const pid of pids) assert.ok(isAlive(pid), `round ${round}: pid ${pid} is back`);
    run(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `files_more's own checks: ${v.lines.join(' | ')}`);
});

test('crit decodes the fanotify, pidfd, OFD lock, owner, remap and ghost images', async () => {
  const t = await startTarget('files_more', [WORKDIR]);
  const dir = makeTmpDir('files-more-crit');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.img') && !n.startsWith('pages-'))) crit(join(dir, f));
  const files = crit(join(dir, 'files.img')).entries as Record<string, any>[];
  const fan = files.find((f) => f.type === 'FANOTIFY');
  assert.ok(fan, 'a FANOTIFY entry');
  assert.deepEqual(fan.ffy.mark.map((m: { type: string }) => m.type).sort(), ['INODE', 'MOUNT']);
  // crit 3.17 predates pidfds: it decodes those entries without their type and body
  assert.equal(files.filter((f) => f.type === undefined).length, 3, 'three pidfd entries');
  const owned = files.filter((f) => f.pipe?.fown?.signum || f.reg?.fown?.signum);
  assert.equal(owned.length, 2, `two owned descriptions: ${JSON.stringify(owned)}`);
  const locks = crit(join(dir, 'file-locks.img')).entries as { flag: number }[];
  assert.deepEqual(locks.map((l) => l.flag), [1024]);
  const remaps = crit(join(dir, 'remap-fpath.img')).entries as { remap_id: number; remap_type: string }[];
  assert.equal(remaps.length, 2);
  assert.equal(remaps[0].remap_id, remaps[1].remap_id, 'both opens map to one ghost');
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('ghost-file-')).length, 1, 'one ghost file');
  for (const pid of descendants(t.pid)) assert.ok(isAlive(pid));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('compare names each fd and field that changed in a live process since the dump', async () => {
  const t = await startTarget('fd_changes', [WORKDIR]);
  const fds = Object.fromEntries([...(/^FDS (.*)$/m.exec(t.readyLines.join('\n'))?.[1] ?? '').matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1], m[2]]));
  const dir = makeTmpDir('fd-changes');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  run(['compare', '-t', String(t.pid), '-D', dir]);
  process.kill(t.pid, 'SIGHUP');
  for (let i = 0; i < 500 && !readFileSync(t.logPath, 'utf8').includes('CHANGED'); i++) await new Promise((r) => setTimeout(r, 10));
  assert.match(readFileSync(t.logPath, 'utf8'), /^CHANGED$/m);
  const args = ['compare', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assert.equal(r.status, 1, describeAmber(args, r));
  const expected = [
    new RegExp(`fd ${fds.efd} eventfd count: expected 1, found 4`),
    new RegExp(`fd ${fds.tfd_periodic} timerfd interval: expected 1\\.0, found 0\\.0`),
    new RegExp(`fd ${fds.tfd_idle} timerfd: expected disarmed, found armed`),
    new RegExp(`fd ${fds.ifd} inotify watches: expected \\[1:\\d+:0x100\\], found \\[1:\\d+:0x100 2:\\d+:0x200\\]`),
    new RegExp(`fd ${fds.pipe_r} flags: expected 00?, found 04000`),
    new RegExp(`fd ${fds.sfd} signalfd mask: expected 0x8000000, found 0x8000800`),
    new RegExp(`fd ${fds.fan} fanotify marks: expected \\[\\], found \\[inode:\\d+:0x2/0x0\\]`),
  ];
  for (const re of expected) assert.match(r.stdout, re, describeAmber(args, r));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a pidfd of a process that has exited is refused with one line, and the target keeps running', async () => {
  const t = await startTarget('busy_fd', ['dead_pidfd']);
  const dir = makeTmpDir('files-dead-pidfd');
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, describeAmber(args, r));
  assert.match(r.stderr, new RegExp(`^amber: fd 100 of pid ${t.pid} is a pidfd of a process that has exited.*--only mm --leave-running makes a memory-only snapshot`), describeAmber(args, r));
  assert.ok(!readdirSync(dir).includes('inventory.img'));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

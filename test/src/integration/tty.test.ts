import assert from 'node:assert/strict';
import { closeSync, constants, cpSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ImageStore, setWinsize } from '@amber/core';
import { registerTtyImages, type TtyInfoEntry } from '@amber/plugin-tty/dist/images';
import { interruptTrials } from '../harness/interrupt';
import {
  amber, amberOk, assertOneLineError, cleanup, critDecode, descendants, diffSnapshots, isAlive, makeTmpDir, reap, rewriteImage,
  snapshotProc, startTarget, targetPath, tracerOf, verdict, type Target,
} from '../harness';

registerTtyImages();
after(cleanup);

/** The root's terminal fds: its /dev/pts/N slaves (A first) and /dev/ptmx masters, by fd number. */
function terminalsOf(pid: number): { slaves: { fd: number; index: number }[]; masters: number[] } {
  const fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
  const links = fds.map((fd) => ({ fd, link: readlinkSync(`/proc/${pid}/fd/${fd}`) }));
  return {
    slaves: links.filter((l) => /^\/dev\/pts\/\d+$/.test(l.link)).map((l) => ({ fd: l.fd, index: Number(l.link.slice(9)) })),
    masters: links.filter((l) => l.link === '/dev/ptmx').map((l) => l.fd),
  };
}

/**
 * Starts a ttys target above 8 free pty indexes: devpts hands out the lowest free one, so a pty
 * other tests on this machine open while the target is dumped takes one of those, not one the
 * restore needs again.
 */
async function startTtys(args: string[] = []): Promise<Target> {
  const decoys = Array.from({ length: 8 }, () => openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY));
  try {
    return await startTarget('ttys', args);
  } finally {
    for (const fd of decoys) closeSync(fd);
  }
}

/** Dumps the ttys tree (killing it) and waits until every pid is free again. */
async function dumpTree(t: Target, dir: string, pids: number[]): Promise<void> {
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  const exit = await reap(t.pid);
  assert.equal(exit.signal, 9, exit.text);
  // the root's children were reparented to us (the subreaper) when it died
  for (const pid of pids.slice(1)) await reap(pid);
}

/** After a failed restore: what it had made is ours to reap (we are the subreaper of amber's descendants); none may be left running. */
async function noneLeft(pids: number[]): Promise<void> {
  for (const p of pids) await reap(p, 5_000).catch(() => undefined);
  assert.deepEqual(pids.filter((p) => isAlive(p)), [], 'nothing of the tree is left');
}

test('two pty pairs (termios, window size, packet mode, lock, exclusive, owner, bytes queued both ways), a session with its controlling terminal, /dev/tty and foreground group come back, twice in a row', async () => {
  const t = await startTtys();
  const pids = descendants(t.pid);
  assert.equal(pids.length, 3, `root, session leader, foreground child: ${pids.join(' ')}`);
  const before = pids.map((pid) => snapshotProc(pid));
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`tty-${round}`);
    await dumpTree(t, dir, pids);
    amberOk(['restore', '-D', dir, '-d']);
    for (const pid of pids) assert.ok(isAlive(pid), `round ${round}: pid ${pid} is back`);
    // the report pipe is a new pipe: only its inode may change; every /dev/pts/N link must stay
    const diffs = (i: number) => diffSnapshots(before[i], snapshotProc(pids[i])).filter((d) => !/: link pipe:\[\d+\] -> pipe:\[\d+\]$/.test(d));
    pids.forEach((pid, i) => assert.deepEqual(diffs(i), [], `round ${round}: pid ${pid} as before`));
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('the same tree started unprivileged (uid 65534) comes back as its own user: ptys opened with its credentials, the slave it owns with its mode', async () => {
  const decoys = Array.from({ length: 8 }, () => openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY));
  let t: Target;
  try {
    const workdir = makeTmpDir('tty-user');
    t = await startTarget('ttys', ['--reuid=65534', '--regid=65534', '--clear-groups', targetPath('ttys'), 'user'], { binary: '/usr/bin/setpriv', workdir, owner: 65534 });
  } finally {
    for (const fd of decoys) closeSync(fd);
  }
  const pids = descendants(t.pid);
  const dir = makeTmpDir('tty-user-dump');
  await dumpTree(t, dir, pids);
  amberOk(['restore', '-D', dir, '-d']);
  const { slaves } = terminalsOf(t.pid);
  assert.ok(slaves.length >= 2);
  for (const s of slaves.slice(0, 2)) assert.equal(statSync(`/dev/pts/${s.index}`).uid, 65534, `/dev/pts/${s.index} is the task's`);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('crit decodes tty-info, tty-data and the tty entries of files.img; with --leave-running the queued bytes stay where they were', async () => {
  const t = await startTtys();
  const { slaves } = terminalsOf(t.pid);
  const dir = makeTmpDir('tty-crit');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.img') && !f.startsWith('pages-'))) critDecode(join(dir, f));
  const infos = critDecode(join(dir, 'tty-info.img')).entries as { id: number; type: string; packet_mode: boolean; locked: boolean; exclusive: boolean; rdev: number; pty?: { index: number }; sid: number; pgrp: number }[];
  const ptys = infos.filter((i) => i.type === 'PTY');
  assert.equal(ptys.length, 4, JSON.stringify(infos));
  assert.deepEqual([...new Set(ptys.map((i) => i.pty!.index))].sort(), slaves.slice(0, 2).map((s) => s.index).sort());
  // /dev/tty, opened by the session leader and inherited by its child: one description, one terminal
  assert.equal(infos.filter((i) => i.type === 'CTTY').length, 1, JSON.stringify(infos));
  const masters = ptys.filter((i) => i.rdev === (5 << 8 | 2));
  assert.deepEqual(masters.map((m) => [m.packet_mode, m.locked]).sort(), [[false, false], [true, true]]);
  assert.equal(ptys.filter((i) => i.exclusive).length, 1);
  const [session, fg] = [descendants(t.pid)[1], descendants(t.pid)[2]];
  assert.ok(ptys.some((i) => i.sid === session && i.pgrp === fg), `a pty controls session ${session} with ${fg} in the foreground: ${JSON.stringify(ptys)}`);
  const data = (critDecode(join(dir, 'tty-data.img')).entries as { data: string }[]).map((d) => Buffer.from(d.data, 'base64').toString('latin1'));
  assert.deepEqual(data.sort(), ['first line\nsecond%eof-endedpartial', 'out A\r\n', 'raw-in', 'raw-out'].sort());
  const files = critDecode(join(dir, 'files.img')).entries as { type: string; tty?: { tty_info_id: number } }[];
  assert.ok(files.filter((f) => f.type === 'TTY').every((f) => infos.some((i) => i.id === f.tty?.tty_info_id)));
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('a dump that fails after the terminals were read puts every queued byte back', async () => {
  const t = await startTtys();
  const dir = makeTmpDir('tty-fault');
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args, { env: { AMBER_FAULT: 'dump:after-tty' } });
  assertOneLineError(args, r, /injected fault at dump:after-tty/);
  for (const pid of descendants(t.pid)) assert.equal(tracerOf(pid), 0, `pid ${pid} untraced`);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('compare reports a window size that changed since the dump', async () => {
  const t = await startTtys();
  const dir = makeTmpDir('tty-compare');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  const { slaves } = terminalsOf(t.pid);
  const fd = openSync(`/proc/${t.pid}/fd/${slaves[0].fd}`, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  try {
    setWinsize(fd, { row: 10, col: 20, xpixel: 0, ypixel: 0 });
  } finally {
    closeSync(fd);
  }
  const args = ['compare', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assert.notEqual(r.status, 0, r.stdout);
  assert.match(r.stdout + r.stderr, /window size.*33x101.*10x20/, r.stdout + r.stderr);
});

test('a restore whose pty index is taken refuses with one line naming it and leaves nothing; once free, it restores', async () => {
  const t = await startTtys();
  const pids = descendants(t.pid);
  const wanted = terminalsOf(t.pid).slaves[0].index;
  const dir = makeTmpDir('tty-taken');
  await dumpTree(t, dir, pids);
  // take index `wanted` the way anyone would: open /dev/ptmx until the kernel hands it out
  const held: number[] = [];
  let holder = -1;
  for (let i = 0; i < 64 && holder < 0; i++) {
    const fd = openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY);
    const index = Number(/tty-index:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]);
    if (index === wanted) holder = fd;
    else held.push(fd);
    if (index > wanted) break;
  }
  for (const fd of held) closeSync(fd);
  assert.ok(holder >= 0, `could not take pty ${wanted}`);
  try {
    const args = ['restore', '-D', dir, '-d'];
    assertOneLineError(args, amber(args), new RegExp(`pty index ${wanted} \\(/dev/pts/${wanted}\\) is in use`));
    await noneLeft(pids);
  } finally {
    closeSync(holder);
  }
  amberOk(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('a damaged tty-info.img is refused at restore with one line, and leaves nothing', async () => {
  const t = await startTtys();
  const pids = descendants(t.pid);
  const dir = makeTmpDir('tty-damaged');
  await dumpTree(t, dir, pids);
  const good = makeTmpDir('tty-damaged-copy');
  cpSync(dir, good, { recursive: true });
  const store = ImageStore.forRead(dir);
  const { entries } = store.read<TtyInfoEntry>('tty-info', 'tty-info');
  rewriteImage(store, 'tty-info', 'tty-info', entries.slice(1));
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amber(args), /files\.img names terminal 1, which tty-info\.img does not have/);
  await noneLeft(pids);
  rewriteImage(store, 'tty-info', 'tty-info', entries.map((e) => ({ ...e, termios: undefined })));
  assertOneLineError(args, amber(args), /pty \d+: tty-info\.img has no termios/);
  await noneLeft(pids);
  amberOk(['restore', '-D', good, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('a pty whose slave was closed again comes back with its other end closed and its queues; one whose slave was never opened is refused', async () => {
  const t = await startTtys(['closed']);
  const dir = makeTmpDir('tty-closed');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d']);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);

  const n = await startTarget('ttys', ['never']);
  const args = ['dump', '-t', String(n.pid), '-D', makeTmpDir('tty-never')];
  assertOneLineError(args, amber(args), new RegExp(`^amber: fd \\d+ of pid ${n.pid} is the master of /dev/pts/\\d+, whose slave was never opened: .*keeps running`));
  const w = await verdict(n);
  assert.ok(w.passed, `target's own checks: ${w.lines.join(' | ')}`);
});

test('12000 bytes the slave wrote (more than the line discipline holds) and 3000 typed come back exactly; 6000 typed and unread are refused before a byte is read', async () => {
  const t = await startTtys(['bulk', '12000', '3000']);
  const dir = makeTmpDir('tty-bulk');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);

  const f = await startTtys(['bulk', '0', '6000']);
  const args = ['dump', '-t', String(f.pid), '-D', makeTmpDir('tty-flood')];
  assertOneLineError(args, amber(args), /^amber: \/dev\/pts\/\d+: 4095 or more bytes typed into it wait to be read, more than its line discipline holds \(4095\).*keeps running/);
  const w = await verdict(f);
  assert.ok(w.passed, `target's own checks: ${w.lines.join(' | ')}`);
});

test('a terminal whose master is outside the tree is refused with one line naming it and -j/--shell-job; the tree keeps running', async () => {
  const t = await startTarget('ttys', ['outside']);
  const child = descendants(t.pid)[1];
  const args = ['dump', '-t', String(child), '-D', makeTmpDir('tty-outside')];
  assertOneLineError(args, amber(args), new RegExp(`^amber: fd \\d+ of pid ${child} is /dev/pts/\\d+, a terminal whose master is outside the dumped tree: .*-j/--shell-job.*keeps running`));
  assert.equal(tracerOf(child), 0);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('a session leader whose controlling terminal has its master outside the tree (and no fd of it) is refused with one line', async () => {
  const t = await startTarget('ttys', ['outside-ctty']);
  const child = descendants(t.pid)[1];
  const args = ['dump', '-t', String(child), '-D', makeTmpDir('tty-outside-ctty')];
  assertOneLineError(args, amber(args), new RegExp(`^amber: pid ${child} leads a session whose controlling terminal /dev/pts/\\d+ has its master outside the dumped tree: .*keeps running`));
  assert.equal(tracerOf(child), 0);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

for (const [mode, path, name] of [['console', '/dev/console', 'the system console'], ['vt', '/dev/tty1', 'virtual console 1']]) {
  test(`${path} is refused with one line, and the target keeps running`, async () => {
    const t = await startTarget('ttys', [mode]);
    const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir(`tty-${mode}`)];
    assertOneLineError(args, amber(args), new RegExp(`^amber: fd \\d+ of pid ${t.pid} is ${path} \\(${name}\\): amber restores pseudo-terminals only.*keeps running`));
    const v = await verdict(t);
    assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
  });
}

test('SIGINT/SIGTERM during dumps of the ttys tree, at random moments, leave its queued bytes and terminals as they were', async () => {
  const t = await startTtys();
  const r = await interruptTrials(t, ['dump', 'pre-dump', 'dump'], ['SIGINT', 'SIGTERM'], 150, 6);
  console.log(`# ttys: ${r.done} interrupted, ${r.late} finished first, slowest run ${r.maxMs} ms`);
});

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { AF, MSG, SOCK, accept4, bindUnix, close, listen, recvmsg, sendmsg, socket, socketpair } from '@amber/core';
import { amber, amberOk, assertOneLineError, cleanup, cliEntry, isAlive, makeTmpDir, procState, reap, sleep, startTarget, verdict, type Target } from '../harness';

after(cleanup);

/** A refused restore's task is killed; as the subreaper the test reaps what is left of it. */
async function reapIfZombie(pid: number): Promise<void> {
  if (procState(pid) === 'Z') await reap(pid);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A datagram socket of the test's own, outside the target's tree: the target's peer. */
function peerSocket(dir: string): { fd: number; path: string } {
  const path = join(dir, 'peer.sock');
  const fd = socket(AF.UNIX, SOCK.DGRAM | SOCK.CLOEXEC);
  bindUnix(fd, Buffer.from(path));
  return { fd, path };
}

async function received(fd: number, want: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = recvmsg(fd, 64, MSG.DONTWAIT);
    if (m?.data.toString() === want) return;
    if (Date.now() > deadline) throw new Error(`"${want}" never arrived at the peer`);
    if (!m) await sleep(5);
  }
}

/** Lets the target send "after", answers it from the peer, and returns the target's verdict. */
async function roundTrip(t: Target, peer: number, targetName: string): Promise<void> {
  const v = verdict(t);
  await received(peer, 'after');
  sendmsg(peer, Buffer.from('reply'), { name: Buffer.from(targetName) });
  const result = await v;
  assert.ok(result.passed, `target's own checks: ${result.lines.join(' | ')}`);
}

test('a socket connected to a process outside the tree is refused with one line naming the fd, the peer and --ext-unix-sk', async () => {
  const dir = makeTmpDir('unix-ext-refused');
  const peer = peerSocket(dir);
  try {
    const mine = join(dir, 'target.sock');
    const t = await startTarget('unix_ext', [peer.path, mine, 'dgram']);
    await received(peer.fd, 'before');
    const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('unix-ext-refused-img')];
    assertOneLineError(args, amber(args), new RegExp(
      `fd \\d+ of pid ${t.pid} is a unix datagram socket connected to socket:\\[\\d+\\] \\(${escape(peer.path)}, held by pid ${process.pid} .*outside the dumped tree.*--ext-unix-sk`,
    ));
    assert.ok(isAlive(t.pid), 'the target keeps running');
    await roundTrip(t, peer.fd, mine);
  } finally {
    close(peer.fd);
  }
});

test('--ext-unix-sk: a datagram socket comes back connected to its named peer outside the tree', async () => {
  const dir = makeTmpDir('unix-ext');
  const peer = peerSocket(dir);
  try {
    const mine = join(dir, 'target.sock');
    const t = await startTarget('unix_ext', [peer.path, mine, 'dgram']);
    await received(peer.fd, 'before');
    const images = makeTmpDir('unix-ext-img');
    amberOk(['dump', '-t', String(t.pid), '-D', images, '--ext-unix-sk']);
    assert.equal((await reap(t.pid)).signal, 9);
    const plain = ['restore', '-D', images, '-d'];
    assertOneLineError(plain, amber(plain), /outside the tree \(dumped with --ext-unix-sk\): restore with --ext-unix-sk/);
    assert.ok(!isAlive(t.pid), 'the refused restore left nothing');
    await reapIfZombie(t.pid);
    amberOk(['restore', '-D', images, '-d', '--ext-unix-sk']);
    assert.ok(isAlive(t.pid));
    amberOk(['compare', '-t', String(t.pid), '-D', images]);
    await roundTrip(t, peer.fd, mine);
  } finally {
    close(peer.fd);
  }
});

test('--ext-unix-sk with a stream connection to the outside: the restore refuses without --inherit-fd and uses the socket handed in with it', async () => {
  const dir = makeTmpDir('unix-ext-stream');
  const path = join(dir, 'listener.sock');
  const listener = socket(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC);
  let accepted = -1;
  try {
    bindUnix(listener, Buffer.from(path));
    listen(listener, 4);
    const t = await startTarget('unix_ext', [path, join(dir, 'target.sock'), 'stream']);
    accepted = accept4(listener, SOCK.CLOEXEC);
    await received(accepted, 'before');
    const ino = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${t.pid}/fd/3`))![1];
    const plainDump = ['dump', '-t', String(t.pid), '-D', makeTmpDir('unix-ext-stream-refused')];
    assertOneLineError(plainDump, amber(plainDump), new RegExp(`a unix stream socket connected to .*--ext-unix-sk.*--inherit-fd fd\\[N\\]:socket:\\[${ino}\\]`));
    const images = makeTmpDir('unix-ext-stream-img');
    amberOk(['dump', '-t', String(t.pid), '-D', images, '--ext-unix-sk']);
    await reap(t.pid);
    const bare = ['restore', '-D', images, '-d', '--ext-unix-sk'];
    assertOneLineError(bare, amber(bare), new RegExp(`cannot be remade; hand one in with --inherit-fd fd\\[N\\]:socket:\\[${ino}\\]`));
    await reapIfZombie(t.pid);
    // a connection of the test's own, handed to amber as its fd 3
    const [mine, theirs] = socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC);
    try {
      const args = ['restore', '-D', images, '-d', '--inherit-fd', `fd[3]:socket:[${ino}]`];
      const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', theirs], timeout: 60_000 });
      close(theirs);
      assert.equal(r.status, 0, `amber ${args.join(' ')}: ${r.stderr}`);
      assert.ok(isAlive(t.pid), 'restored');
      const v = verdict(t);
      await received(mine, 'after');
      sendmsg(mine, Buffer.from('reply'));
      const result = await v;
      assert.ok(result.passed, `target's own checks: ${result.lines.join(' | ')}`);
    } finally {
      close(mine);
    }
  } finally {
    if (accepted >= 0) close(accepted);
    close(listener);
  }
});

test('data sent into a connection its listener has not accepted yet stops the dump with one line; the target is unharmed', async () => {
  const dir = makeTmpDir('unix-embryo');
  const t = await startTarget('unix_ext', ['-', join(dir, 'listener.sock'), 'embryo']);
  const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('unix-embryo-img')];
  assertOneLineError(args, amber(args), new RegExp(`fd \\d+ of pid ${t.pid}: its connection to the listener of the tree is not accepted yet and holds \\d+ byte\\(s\\) sent to it; nothing was changed`));
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  AF, MSG, SHUT, SHUTDOWN_MASK, SO, SOCK, SOL_SOCKET, UNIX_STATE, accept4, bindUnix, close, connectUnix, getpeernameUnix, getsocknameUnix,
  getsockoptInt, listen, recvmsg, sendmsg, setsockoptInt, shutdown, socket, socketpair, unixSocket, unixSockets,
} from '@amber/core';

const inodeOf = (fd: number) => Number(statSync(`/proc/self/fd/${fd}`).ino);

test('sock_diag: a socketpair is two peers, with their queue lengths and shutdown bits', () => {
  const [a, b] = socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC);
  try {
    sendmsg(a, Buffer.from('hello'));
    shutdown(a, SHUT.WR);
    const all = unixSockets();
    const ra = all.get(inodeOf(a))!;
    const rb = all.get(inodeOf(b))!;
    assert.equal(ra.peer, inodeOf(b));
    assert.equal(rb.peer, inodeOf(a));
    assert.equal(ra.type, SOCK.STREAM);
    assert.equal(ra.state, UNIX_STATE.ESTABLISHED);
    assert.equal(rb.rqlen, 5, 'bytes queued to b');
    assert.equal(ra.shutdown, SHUTDOWN_MASK.SEND);
    assert.equal(rb.shutdown, SHUTDOWN_MASK.RCV, 'the peer sees the shut direction');
    assert.equal(ra.name, undefined);
    assert.deepEqual(unixSocket(inodeOf(b))?.peer, inodeOf(a), 'a single-socket query agrees');
  } finally {
    close(a);
    close(b);
  }
});

test('sock_diag: a listener with a connection not yet accepted names it (icons), its path and file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'amber-diag-'));
  const path = join(dir, 'l.sock');
  const l = socket(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC);
  const c = socket(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC);
  try {
    bindUnix(l, Buffer.from(path));
    listen(l, 7);
    connectUnix(c, Buffer.from(path));
    const rl = unixSocket(inodeOf(l))!;
    assert.equal(rl.state, UNIX_STATE.LISTEN);
    assert.equal(rl.name?.toString(), path);
    assert.equal(rl.vfs?.ino, Number(statSync(path).ino));
    assert.deepEqual(rl.icons, [inodeOf(c)], 'the queued connection is the client');
    assert.equal(rl.rqlen, 1);
    assert.equal(rl.wqlen, 7, 'backlog');
    assert.equal(getpeernameUnix(c)?.toString(), path);
    const s = accept4(l, SOCK.CLOEXEC);
    assert.equal(getsocknameUnix(s).toString(), path, 'an accepted socket carries the listener name');
    assert.equal(unixSocket(inodeOf(c))!.peer, inodeOf(s));
    assert.deepEqual(unixSocket(inodeOf(l))!.icons, []);
    close(s);
  } finally {
    close(l);
    close(c);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('peeking with SO_PEEK_OFF keeps dgram boundaries and consumes nothing', () => {
  const [a, b] = socketpair(AF.UNIX, SOCK.DGRAM | SOCK.CLOEXEC);
  const abstract = Buffer.from('\0amber-diag-test-' + process.pid);
  const named = socket(AF.UNIX, SOCK.DGRAM | SOCK.CLOEXEC);
  try {
    bindUnix(named, abstract);
    assert.deepEqual(unixSocket(inodeOf(named))!.name, abstract, 'abstract names come back with their NUL');
    for (const m of ['one', 'three', '']) sendmsg(a, Buffer.from(m));
    setsockoptInt(b, SOL_SOCKET, SO.PEEK_OFF, 0);
    const seen: string[] = [];
    for (;;) {
      const m = recvmsg(b, 1024, MSG.PEEK | MSG.DONTWAIT);
      if (!m) break;
      seen.push(m.data.toString());
      if (seen.length > 5) break;
    }
    assert.deepEqual(seen, ['one', 'three', '']);
    setsockoptInt(b, SOL_SOCKET, SO.PEEK_OFF, -1);
    assert.equal(getsockoptInt(b, SOL_SOCKET, SO.PEEK_OFF), -1);
    assert.equal(recvmsg(b, 1024, MSG.DONTWAIT)?.data.toString(), 'one', 'still queued');
  } finally {
    close(a);
    close(b);
    close(named);
  }
});

import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import {
  AF, IPPROTO, MSG, SOCK, TCP_STATE, accept4, addrFromWords, addrToWords, bindInet, close, connectInet, formatEndpoint, formatInetAddr,
  getpeernameInet, getsocknameInet, inetSocket, inetSocketList, listen, parseInetAddr, recvmsg, repairOff, repairOn, restoreTcpStream,
  saveTcpStream, sendmsg, sleepSync, socket, type InetEndpoint,
} from '@amber/core';

const inodeOf = (fd: number) => Number(statSync(`/proc/self/fd/${fd}`).ino);
const loopback = (port = 0): InetEndpoint => ({ family: AF.INET, addr: parseInetAddr('127.0.0.1').addr, port });

/** A listener and a connection to it on 127.0.0.1 (ephemeral ports): [listener, client, server end]. */
function connection(): [number, number, number] {
  const l = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC);
  bindInet(l, loopback());
  listen(l, 7);
  const c = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC);
  connectInet(c, loopback(getsocknameInet(l).port));
  const s = accept4(l, SOCK.CLOEXEC);
  return [l, c, s];
}

/** Reads until n bytes came (or 5 s passed). */
function readN(fd: number, n: number): Buffer {
  const parts: Buffer[] = [];
  let got = 0;
  for (const deadline = Date.now() + 5000; got < n && Date.now() < deadline;) {
    const m = recvmsg(fd, n - got, MSG.DONTWAIT, 0);
    if (m === undefined) { sleepSync(10); continue; }
    assert.ok(m.length > 0, `EOF after ${got} of ${n} bytes`);
    parts.push(m.data);
    got += m.data.length;
  }
  return Buffer.concat(parts);
}

test('inet addresses: text, image words and sockaddr agree', () => {
  for (const text of ['10.77.1.2', 'fd77:0:0:1::2', '::1', '::ffff:127.0.0.1', '2001:db8:1:2:3:4:5:6']) {
    const { family, addr } = parseInetAddr(text);
    assert.equal(formatInetAddr(family, addr), text);
    assert.deepEqual(addrFromWords(family, addrToWords(addr)), addr);
  }
  assert.equal(addrToWords(parseInetAddr('127.0.0.1').addr)[0], 0x0100007f, 'network-order bytes read as a little-endian word, as CRIU keeps them');
  assert.equal(formatEndpoint({ family: AF.INET6, addr: parseInetAddr('::1').addr, port: 80 }), '[::1]:80');
});

test('inet_diag: a listener and both ends of a connection, by inode, with states, ports and queues', () => {
  const [l, c, s] = connection();
  try {
    sendmsg(c, Buffer.alloc(1000, 7));
    sleepSync(50);
    const all = inetSocketList(AF.INET, IPPROTO.TCP);
    const rl = all.find((r) => r.inode === inodeOf(l))!;
    const rc = all.find((r) => r.inode === inodeOf(c))!;
    const rs = inetSocket(AF.INET, IPPROTO.TCP, inodeOf(s))!;
    assert.equal(rl.state, TCP_STATE.LISTEN);
    assert.equal(rl.wqueue, 7, "a listener's backlog");
    assert.equal(rc.state, TCP_STATE.ESTABLISHED);
    assert.equal(rs.state, TCP_STATE.ESTABLISHED);
    assert.equal(rc.dstPort, rl.srcPort);
    assert.equal(rs.srcPort, rl.srcPort);
    assert.equal(rs.dstPort, rc.srcPort);
    assert.equal(formatInetAddr(AF.INET, rc.dst), '127.0.0.1');
    assert.equal(rs.rqueue, 1000, 'bytes the server end has not read');
    assert.ok(rs.skmeminfo.length >= 4 && rs.skmeminfo[0] > 0, 'skmeminfo: receive memory in use');
    assert.equal(inetSocket(AF.INET, IPPROTO.UDP, inodeOf(s)), undefined, 'not a UDP socket');
  } finally {
    [l, c, s].forEach(close);
  }
});

test('TCP repair: a connection saved with data both ways, closed quietly in repair mode and rebuilt, goes on', () => {
  const [l, c, s] = connection();
  let c2 = -1;
  try {
    const toClient = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const fromClient = Buffer.from('client bytes the server has not read');
    sendmsg(s, toClient);
    sendmsg(c, fromClient);
    sleepSync(50);
    const local = getsocknameInet(c);
    const peer = getpeernameInet(c)!;
    repairOn(c);
    const saved = saveTcpStream(c);
    assert.equal(saved.state, TCP_STATE.ESTABLISHED);
    assert.equal(saved.inqLen, toClient.length);
    assert.deepEqual(saved.inq, toClient);
    assert.ok(saved.mssClamp > 0);
    // in repair mode the close sends neither FIN nor RST
    close(c);
    c2 = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC);
    restoreTcpStream(c2, saved, local, peer);
    repairOff(c2);
    assert.deepEqual(readN(c2, toClient.length), toClient, 'the receive queue, in order');
    assert.deepEqual(readN(s, fromClient.length), fromClient, 'what the server had not read yet');
    sendmsg(c2, Buffer.from('ping'));
    assert.equal(readN(s, 4).toString(), 'ping');
    sendmsg(s, Buffer.from('pong'));
    assert.equal(readN(c2, 4).toString(), 'pong');
    assert.equal(inetSocket(AF.INET, IPPROTO.TCP, inodeOf(s))?.state, TCP_STATE.ESTABLISHED, 'the server end never saw a reset or a FIN');
  } finally {
    [l, s, c2].filter((fd) => fd >= 0).forEach(close);
  }
});

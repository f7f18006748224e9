import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import {
  AF, AF_PACKET, NDIAG_FLAG, NETLINK, NETLINK_OPT, SO, SOCK, SOL_NETLINK, SOL_SOCKET, bindRaw, close, getsockoptInt, netlinkSockets,
  packetSockets, peekDatagrams, sendDatagram, setsockoptInt, socket, socketFilterOf, identityOfSocket, sockaddrInet, getsocknameInet,
} from '@amber/core';

// amber's sock_diag clients and queue peeking, on sockets of the test process itself (its own
// namespace, loopback only).

const inodeOf = (fd: number) => Number(statSync(`/proc/self/fd/${fd}`).ino);

function sockaddrNl(portid: number, groups: number): Buffer {
  const a = Buffer.alloc(12);
  a.writeUInt16LE(AF.NETLINK, 0);
  a.writeUInt32LE(portid, 4);
  a.writeUInt32LE(groups, 8);
  return a;
}

test('netlink diag: a bound route socket with a group above 32 and NETLINK_PKTINFO; an unbound one is not listed', () => {
  const fd = socket(AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK.ROUTE);
  const unbound = socket(AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK.ROUTE);
  try {
    // RTMGRP_LINK (group 1) through bind, group 33 only by setsockopt
    assert.equal(bindRaw(fd, sockaddrNl(0, 1)), 0);
    setsockoptInt(fd, SOL_NETLINK, NETLINK_OPT.ADD_MEMBERSHIP, 33);
    setsockoptInt(fd, SOL_NETLINK, NETLINK_OPT.PKTINFO, 1);
    const all = netlinkSockets(process.pid);
    const rec = all.get(inodeOf(fd));
    assert.ok(rec, 'listed');
    assert.equal(rec.protocol, NETLINK.ROUTE);
    assert.notEqual(rec.portid, 0, 'autobound');
    assert.deepEqual(rec.groups, [1, 33]);
    assert.ok(rec.flags & NDIAG_FLAG.PKTINFO);
    assert.equal(all.get(inodeOf(unbound)), undefined, 'an unbound socket is in no table');
    assert.deepEqual(identityOfSocket(fd), { family: AF.NETLINK, type: SOCK.DGRAM, protocol: NETLINK.ROUTE });
  } finally {
    close(fd);
    close(unbound);
  }
});

test('packet diag: a packet socket of protocol 0 (it receives nothing), and a classic BPF filter read back', () => {
  // protocol 0: this namespace is the machine's own, and such a socket sees none of its traffic
  const fd = socket(AF_PACKET, SOCK.DGRAM | SOCK.CLOEXEC, 0);
  try {
    const rec = packetSockets(process.pid).get(inodeOf(fd));
    assert.ok(rec);
    assert.equal(rec.type, SOCK.DGRAM);
    assert.equal(rec.protocol, 0);
    assert.equal(rec.ifindex, 0);
    assert.equal(rec.fanout, undefined);
    assert.deepEqual(socketFilterOf(fd), []);
    assert.equal(identityOfSocket(fd).family, AF_PACKET);
  } finally {
    close(fd);
  }
});

test('peekDatagrams: every datagram (an empty one too) with its sender, none consumed, SO_PEEK_OFF as it was', () => {
  const rx = socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0);
  const tx = socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0);
  try {
    const lo = { family: AF.INET, addr: Buffer.from([127, 0, 0, 1]), port: 0 };
    assert.equal(bindRaw(rx, sockaddrInet(lo)), 0);
    assert.equal(bindRaw(tx, sockaddrInet(lo)), 0);
    const to = sockaddrInet(getsocknameInet(rx));
    for (const d of ['one', '', 'three!']) assert.equal(sendDatagram(tx, Buffer.from(d), to), d.length);
    const peeked = peekDatagrams(rx);
    assert.deepEqual(peeked.map((d) => d.data.toString()), ['one', '', 'three!']);
    const from = getsocknameInet(tx);
    for (const d of peeked) assert.equal(d.from.readUInt16BE(2), from.port);
    assert.equal(getsockoptInt(rx, SOL_SOCKET, SO.PEEK_OFF), -1);
    // still all there, for a plain read
    assert.equal(peekDatagrams(rx).filter((d) => d.data.length).length, 2, 'non-empty ones seen again (an empty one a peek has seen is passed over)');
  } finally {
    close(rx);
    close(tx);
  }
});

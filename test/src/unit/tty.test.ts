import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { O, decodeTermios, encodeTermios, type FdResource, type Termios } from '@amber/core';
import { RegularFileKind } from '@amber/plugin-fs/dist/regular-file';
import { classify, encodeDev, isTerminalFd, slaveIndexOf, slaveRdev } from '@amber/plugin-tty/dist/devices';
import { I, L, OPOST, VC, drainMode, refillMode } from '@amber/plugin-tty/dist/termios';

/** glibc's dev_t, as fstat gives it to node. */
const makedev = (major: number, minor: number) => (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) | (BigInt(minor & ~0xff) << 12n) | (BigInt(major & ~0xfff) << 32n);

const chr = (link: string, major: number, minor: number, flags: number = O.RDWR): FdResource => ({
  pid: 4242, fd: 7, link, mode: constants.S_IFCHR | 0o620, uid: 0, gid: 5, dev: 24n, ino: 3n, rdev: makedev(major, minor), size: 0n,
  info: { pos: 0n, flags, mntId: 0, extra: new Map() },
});

test('terminal fds are told apart by device number: masters, slaves (all eight majors), /dev/tty, and what is refused', () => {
  assert.deepEqual(classify(chr('/dev/ptmx', 5, 2)), { what: 'master', rdev: encodeDev(5, 2) });
  assert.deepEqual(classify(chr('/dev/pts/3', 136, 3)), { what: 'slave', index: 3, rdev: encodeDev(136, 3) });
  assert.equal((classify(chr('/dev/pts/261', 137, 5)) as { index: number }).index, 261);
  assert.equal((classify(chr('/dev/pts/2047', 143, 255)) as { index: number }).index, 2047);
  assert.equal(classify(chr('/dev/tty', 5, 0)).what, 'ctty');
  assert.deepEqual(classify(chr('/dev/console', 5, 1)), { what: 'unsupported', name: 'the system console' });
  assert.deepEqual(classify(chr('/dev/tty1', 4, 1)), { what: 'unsupported', name: 'virtual console 1' });
  assert.deepEqual(classify(chr('/dev/ttyS0', 4, 64)), { what: 'unsupported', name: 'serial line 0' });
  assert.equal(slaveIndexOf(slaveRdev(300)), 300);
  assert.equal(slaveIndexOf(encodeDev(144, 0)), undefined);
});

test('the tty kind and the regular-file kind never claim the same fd', () => {
  const reg = new RegularFileKind();
  const terminals = [chr('/dev/ptmx', 5, 2), chr('/dev/pts/3', 136, 3), chr('/dev/tty', 5, 0), chr('/dev/console', 5, 1), chr('/dev/tty1', 4, 1)];
  for (const fd of terminals) {
    assert.ok(isTerminalFd(fd), `${fd.link} is a terminal`);
    assert.ok(!reg.claims(fd), `${fd.link} is no regular file`);
  }
  const others = [chr('/dev/null', 1, 3), chr('/dev/pts/3', 136, 3, O.PATH), { ...chr('/dev/pts', 0, 0), mode: constants.S_IFDIR | 0o755 }];
  for (const fd of others) {
    assert.ok(!isTerminalFd(fd), `${fd.link} (flags 0${fd.info.flags.toString(8)}) is no terminal`);
    assert.ok(reg.claims(fd), `${fd.link} stays the regular-file kind's`);
  }
});

const sample: Termios = {
  iflag: I.ICRNL | I.IXON, oflag: OPOST | 0o4, cflag: 0o277, lflag: L.ICANON | L.ISIG | L.ECHO | L.IEXTEN, line: 0,
  cc: [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 37, 18, 15, 23, 22, 0, 0, 0], ispeed: 9600, ospeed: 38400,
};

test('struct termios2 round-trips through its 44 bytes; the 36-byte struct termios drops only the speeds', () => {
  assert.deepEqual(decodeTermios(encodeTermios(sample)), sample);
  assert.deepEqual(decodeTermios(encodeTermios(sample, 36)), { ...sample, ispeed: 0, ospeed: 0 });
});

test('refill mode lets nothing act on queued bytes twice, and keeps lines lines', () => {
  const r = refillMode(sample, 0xfe);
  assert.equal(r.lflag & (L.ECHO | L.ISIG), 0, 'no echo, no signals');
  assert.equal(r.lflag & L.ICANON, L.ICANON, 'canonical stays canonical');
  assert.equal(r.iflag & (I.ICRNL | I.IXON), 0, 'no input mapping, no flow control');
  assert.equal(r.oflag & OPOST, 0, 'no output processing');
  for (const v of [VC.INTR, VC.ERASE, VC.KILL, VC.WERASE, VC.LNEXT]) assert.equal(r.cc[v], 0xfe, `c_cc[${v}] edits nothing`);
  for (const v of [VC.EOF, VC.EOL, VC.EOL2, VC.MIN, VC.TIME]) assert.equal(r.cc[v], sample.cc[v], `c_cc[${v}] ends lines as it did`);
  const d = drainMode(sample);
  assert.equal(d.lflag & L.ICANON, 0);
  assert.deepEqual([d.cc[VC.MIN], d.cc[VC.TIME]], [0, 0]);
  assert.deepEqual(sample.cc[VC.MIN], 1, 'the original is left alone');
});

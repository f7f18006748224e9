import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAuxv, parseFdinfo, parseMaps, parseSmapsVmFlags, parseStat, parseStatus, Registers, resumeFromSyscallExit, SYS } from '@amber/core';

// Recorded from a real task on this kernel (a comm with a space and a parenthesis in it).
const STAT =
  '4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 5130 6397952 386 ' +
  '18446744073709551615 94502412365824 94502412370021 140724713427248 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 ' +
  '94502412380624 94502412381424 94502431547392 140724713430299 140724713430331 140724713430331 140724713431013 0\n';

test('stat: comm with spaces and parentheses, mm fields by position', () => {
  const st = parseStat(STAT);
  assert.equal(st.pid, 4242);
  assert.equal(st.comm, 'we (ird) name');
  assert.equal(st.state, 'S');
  assert.equal(st.ppid, 1);
  assert.equal(st.session, 4242);
  assert.equal(st.startCode, 94502412365824n);
  assert.equal(st.startBrk, 94502431547392n);
  assert.equal(st.envEnd, 140724713431013n);
  assert.equal(st.exitCode, 0);
});

test('maps: paths with spaces, deleted files, anonymous and special areas', () => {
  const maps = parseMaps(
    '55d1e8a00000-55d1e8a01000 r--p 00000000 fe:00 123 /tmp/a file (deleted)\n' +
      '7ffc1eb55000-7ffc1eb76000 rw-p 00000000 00:00 0                          [stack]\n' +
      '7fa27c7be000-7fa27c7c2000 rw-p 00000000 00:00 0 \n' +
      'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n',
  );
  assert.equal(maps.length, 4);
  assert.equal(maps[0].path, '/tmp/a file (deleted)');
  assert.equal(maps[0].inode, 123);
  assert.equal(maps[1].path, '[stack]');
  assert.equal(maps[2].path, '');
  assert.equal(maps[3].start, 0xffffffffff600000n);
});

test('smaps VmFlags by VMA start', () => {
  const flags = parseSmapsVmFlags(
    '7ffc1eb55000-7ffc1eb76000 rw-p 00000000 00:00 0 [stack]\nSize: 132 kB\nVmFlags: rd wr mr mw me gd ac\n' +
      '7fa27c7be000-7fa27c7c2000 rw-p 00000000 00:00 0\nVmFlags: rd wr mr mw me nr\n',
  );
  assert.deepEqual(flags.get(0x7ffc1eb55000n), ['rd', 'wr', 'mr', 'mw', 'me', 'gd', 'ac']);
  assert.ok(flags.get(0x7fa27c7be000n)?.includes('nr'));
});

test('status: a key per line, values trimmed, a last line without its newline, lines without a colon skipped', () => {
  const st = parseStatus('Name:\tsleep x\nUmask:\t0022\nState:\tS (sleeping)\nno colon here\nUid:\t0\t0\t0\t0\nSigQ:\t0/95000');
  assert.equal(st.get('Name'), 'sleep x');
  assert.equal(st.get('State'), 'S (sleeping)');
  assert.equal(st.get('Uid'), '0\t0\t0\t0');
  assert.equal(st.get('SigQ'), '0/95000');
  assert.equal(st.size, 5);
});

test('smaps: a counter line is not taken for a VMA, whatever its first letter', () => {
  const flags = parseSmapsVmFlags('00400000-00401000 r-xp 00000000 08:01 12 /bin/x\nAnonymous: 0 kB\nVmFlags: rd ex\nbad line\nVmFlags: wr\n');
  assert.deepEqual([...flags.keys()], [0x400000n]);
  assert.deepEqual(flags.get(0x400000n), ['wr']);
});

test('smaps: a VMA whose block has no VmFlags line takes none, and the next one gets its own', () => {
  const flags = parseSmapsVmFlags('00400000-00401000 r-xp 00000000 08:01 12 /bin/x\nSize: 4 kB\n7f00-7f01 rw-p 0 0:0 0\nRss: 0 kB\nVmFlags: rd wr\n7f02-7f03 r--p 0 0:0 0\nVmFlags: rd\n');
  assert.deepEqual([...flags.entries()], [[0x7f00n, ['rd', 'wr']], [0x7f02n, ['rd']]]);
});

test('fdinfo: octal flags, position, mount id and kind-specific lines', () => {
  const info = parseFdinfo('pos:\t5\nflags:\t02100002\nmnt_id:\t24\nino:\t77\neventfd-count:  3\n');
  assert.equal(info.pos, 5n);
  assert.equal(info.flags, 0o2100002);
  assert.equal(info.mntId, 24);
  assert.equal(info.extra.get('eventfd-count'), '3');
});

test('auxv stops at AT_NULL', () => {
  const raw = Buffer.alloc(64);
  raw.writeBigUInt64LE(6n, 0);
  raw.writeBigUInt64LE(4096n, 8);
  raw.writeBigUInt64LE(0n, 16);
  raw.writeBigUInt64LE(0n, 24);
  raw.writeBigUInt64LE(99n, 32);
  assert.deepEqual(parseAuxv(raw), [6n, 4096n, 0n, 0n]);
});

function regs(ax: bigint, origAx: bigint, ip = 0x1002n): Registers {
  const r = new Registers();
  r.set('ax', ax);
  r.set('origAx', origAx);
  r.set('ip', ip);
  return r;
}

test('an interrupted syscall is restarted the way the kernel would', () => {
  for (const code of [-512n, -513n, -514n]) {
    const r = resumeFromSyscallExit(regs(code, 34n), 'new-task');
    assert.equal(r.get('ax'), 34n, `ERESTART ${code}: rax = orig_rax`);
    assert.equal(r.get('ip'), 0x1000n, 'rip back over the syscall instruction');
  }
  const same = resumeFromSyscallExit(regs(-516n, 230n), 'same-task');
  assert.equal(same.get('ax'), BigInt(SYS.restart_syscall));
  assert.equal(same.get('ip'), 0x1000n);
  const fresh = resumeFromSyscallExit(regs(-516n, 230n), 'new-task');
  assert.equal(fresh.getSigned('ax'), -4n, 'a lost restart block becomes EINTR');
  assert.equal(fresh.get('ip'), 0x1002n);
  const user = resumeFromSyscallExit(regs(-514n, -1n), 'new-task');
  assert.equal(user.getSigned('ax'), -514n, 'not in a syscall: untouched');
  const done = resumeFromSyscallExit(regs(3n, 0n), 'new-task');
  assert.equal(done.get('ax'), 3n);
});

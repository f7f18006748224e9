import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkLeadersInside, checkShellJobRoot, OutsideLeaderError, parseStat, parseTtyInheritKey, readStat, ShellJob, ShellJobImageError,
  silentLogger, terminalName, ttyInheritKey, type ProcStat, type PstreeEntry,
} from '@amber/core';
import { amber, makeTmpDir, removeTmpDirs } from '../harness';
import { assertOneLineError } from '../harness/checks';

// A task on /dev/pts/1 (tty_nr 34817), recorded on this kernel: pid 5000, session 4990, group 5000.
const STAT_ON_PTS =
  '5000 (vim) S 4990 5000 4990 34817 5000 4194304 900 0 0 0 2 1 0 0 20 0 1 0 7000 12000000 2000 ' +
  '18446744073709551615 1 1 0 0 0 0 0 12288 1266777851 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n';

test('stat: the controlling terminal (tty_nr) and its /dev name', () => {
  assert.equal(parseStat(STAT_ON_PTS).ttyNr, 34817);
  assert.equal(terminalName(34817), '/dev/pts/1');
  // pty indexes past 255 keep major 136: the minor's high bits sit above the major in tty_nr
  assert.equal(terminalName((136 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12)), '/dev/pts/300');
  assert.equal(terminalName((4 << 8) | 1), '/dev/tty1');
  assert.equal(terminalName((4 << 8) | 64), '/dev/ttyS0');
  assert.equal(terminalName((5 << 8) | 1), '/dev/console');
  assert.equal(terminalName(0), undefined);
});

/** A dumped task (pid far above pid_max, so never live) in the given session and group. */
function task(pid: number, session: number, pgrp: number, ttyNr = 0): ProcStat {
  return { ...parseStat(STAT_ON_PTS), pid, session, pgrp, ttyNr };
}

test('an outside live session leader is refused without -j (naming the terminal and the flag), allowed with it for the root', () => {
  const shell = process.pid; // a live process outside the "tree": the leader
  const comm = readStat(shell).comm;
  const root = task(900_001, shell, 900_001, 34817);
  assert.throws(
    () => checkLeadersInside([root], root.pid),
    (e: Error) =>
      e instanceof OutsideLeaderError &&
      e.message ===
        `pid 900001 (on terminal /dev/pts/1) is in session ${shell}, whose leader (pid ${shell}, ${comm}) is outside the dumped tree: ` +
          'dump from the session leader, or use -j/--shell-job to dump it as a job of that shell',
  );
  checkLeadersInside([root, task(900_002, shell, 900_001)], root.pid, true);
  // the root's group led from outside too (a pipeline's second process): allowed with -j only
  const member = task(900_003, shell, shell);
  assert.throws(() => checkLeadersInside([member], member.pid), /is in session/);
  checkLeadersInside([member], member.pid, true);
});

test('with -j, an outside leader that is not the root\'s own is still refused', () => {
  const root = task(900_001, process.pid, 900_001);
  const other = task(900_002, 900_002, process.ppid); // joined a group led by another outside process
  assert.throws(() => checkLeadersInside([root, other], root.pid, true), /pid 900002 is in process group .* not the root's process group: -j\/--shell-job takes only/);
});

test('restore: a root whose session or group was led from outside needs -j', () => {
  const inTree = (pid: number) => pid === 100 || pid === 101;
  assert.throws(() => checkShellJobRoot({ pid: 100, sid: 50, pgid: 100 }, inTree, false), (e: Error) => e instanceof ShellJobImageError && /session 50.*-j\/--shell-job/.test(e.message));
  assert.throws(() => checkShellJobRoot({ pid: 100, sid: 100, pgid: 60 }, inTree, false), /process group 60/);
  checkShellJobRoot({ pid: 100, sid: 50, pgid: 60 }, inTree, true);
  checkShellJobRoot({ pid: 101, sid: 100, pgid: 100 }, inTree, false);
});

test("restore -j: the outside session becomes amber's, the outside group one the root leads", () => {
  const job = ShellJob.forRestore(true, false, silentLogger)!;
  try {
    const entries: PstreeEntry[] = [
      { pid: 100, ppid: 1, pgid: 60, sid: 50, threads: [100] },
      { pid: 101, ppid: 100, pgid: 60, sid: 50, threads: [101] },
      { pid: 102, ppid: 100, pgid: 102, sid: 102, threads: [102] },
    ];
    job.adopt(entries);
    assert.deepEqual(entries.map((e) => [e.sid, e.pgid]), [[job.sid, 100], [job.sid, 100], [102, 102]]);
    assert.equal(job.sid, readStat(process.pid).session);
  } finally {
    job.close();
  }
  assert.equal(ShellJob.forRestore(false, false, silentLogger), undefined);
});

test('--inherit-fd tty[RDEV:DEV]: the key of a terminal, and a malformed one refused in one line', () => {
  assert.equal(ttyInheritKey(0x8801n, 0x19n), 'tty[8801:19]');
  assert.deepEqual(parseTtyInheritKey('tty[8801:19]'), { rdev: 0x8801n, dev: 0x19n });
  assert.equal(parseTtyInheritKey('pipe:[123]'), undefined);
  const dir = makeTmpDir('inherit-tty');
  try {
    const args = ['restore', '-D', dir, '--inherit-fd', 'fd[0]:tty[pts1]'];
    assertOneLineError(args, amber(args), /--inherit-fd fd\[0\]:tty\[pts1\]: a terminal's key is tty\[RDEV:DEV\]/);
  } finally {
    removeTmpDirs();
  }
});

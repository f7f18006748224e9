import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, constants, existsSync, openSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { kill, SIG } from '@amber/core';
import { amber, amberOk, cleanup, descendants, describeAmber, isAlive, makeTmpDir, readLog, reap, sleep, startTarget, verdict, WORKDIR } from '../harness';

after(cleanup);

/** Waits until cond() holds (or ms pass); returns whether it held. */
async function eventually(cond: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** The pids a dump holds (the tree can change until it is frozen). */
function dumpedPids(dir: string): number[] {
  const shown = amberOk(['show', join(dir, 'pstree.img'), '--json']);
  return (JSON.parse(shown.stdout) as { entries: { pid: number }[] }).entries.map((e) => e.pid);
}

/** The POSIX locks a process holds, as /proc/locks says (type, inode, range), sorted. */
function posixLocks(pid: number): string[] {
  return readFileSync('/proc/locks', 'utf8').split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === 'POSIX' && f[4] === String(pid))
    .map((f) => `${f[3]} ${f[5]} ${f[6]}-${f[7]}`)
    .sort();
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

test('a shell loop running sleep is restored and keeps looping', async () => {
  const script = 'echo READY $$; while :; do sleep 0.2; echo tick >>"$1/ticks"; done';
  const t = await startTarget('bash-loop', ['-c', script, 'bash', WORKDIR], { binary: '/bin/bash' });
  const ticks = join(t.workdir, 'ticks');
  assert.ok(await eventually(() => lines(ticks).length >= 2, 5000), 'the loop ticks before the dump');
  const dir = makeTmpDir('bash-loop-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of dumpedPids(dir)) await reap(pid);
  const atDump = lines(ticks).length;
  amberOk(['restore', '-D', dir, '-d']);
  assert.ok(isAlive(t.pid), 'the shell is back with its pid');
  assert.ok(await eventually(() => lines(ticks).length >= atDump + 5, 8000), `the loop goes on after restore (${lines(ticks).length} ticks, ${atDump} at dump)`);
});

test('sleep 300 is restored with its pid and /proc/PID/exe', async () => {
  const t = await startTarget('sleep-300', ['-c', 'echo READY $$; exec sleep 300'], { binary: '/bin/sh' });
  assert.ok(await eventually(() => readlinkSync(`/proc/${t.pid}/exe`).endsWith('/sleep'), 5000), 'sh has exec\'d sleep');
  const exe = readlinkSync(`/proc/${t.pid}/exe`);
  const dir = makeTmpDir('sleep-300-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d']);
  assert.ok(isAlive(t.pid), 'sleep is back with its pid');
  assert.equal(readlinkSync(`/proc/${t.pid}/exe`), exe);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
});

test('threads in nanosleep, clock_nanosleep, poll and futex with timeouts resume their waits, twice', async () => {
  const t = await startTarget('sleepers', ['3']);
  await sleep(300);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`sleepers-${round}`);
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    await reap(t.pid);
    amberOk(['restore', '-D', dir, '-d']);
    await sleep(200);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `sleepers' own checks: ${v.lines.join(' | ')}`);
});

test('tail -f goes on following its file after restore', async () => {
  const t = await startTarget('tail-f', ['-c', 'echo READY $$; touch "$1/followed"; exec tail -f "$1/followed"', 'sh', WORKDIR], { binary: '/bin/sh' });
  const followed = join(t.workdir, 'followed');
  assert.ok(await eventually(() => readlinkSync(`/proc/${t.pid}/exe`).endsWith('/tail'), 5000), 'sh has exec\'d tail');
  await sleep(200);
  appendFileSync(followed, 'before the dump\n');
  assert.ok(await eventually(() => readLog(t).includes('before the dump'), 5000), 'tail echoes a line before the dump');
  const dir = makeTmpDir('tail-f-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d']);
  await sleep(200);
  appendFileSync(followed, 'after the restore\n');
  assert.ok(await eventually(() => readLog(t).includes('after the restore'), 5000), `tail echoes a line appended after restore; log: ${readLog(t)}`);
  assert.ok(isAlive(t.pid), 'tail is still running');
  assert.doesNotMatch(readLog(t), /Interrupted system call/);
});

test('sleep 2 restored mid-sleep exits 0 when its time is up', async () => {
  const t = await startTarget('sleep-2', ['-c', 'echo READY $$; exec sleep 2'], { binary: '/bin/sh' });
  const started = Date.now();
  assert.ok(await eventually(() => readlinkSync(`/proc/${t.pid}/exe`).endsWith('/sleep'), 5000), 'sh has exec\'d sleep');
  await sleep(500);
  const dir = makeTmpDir('sleep-2-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  const slept = (Date.now() - started) / 1000;
  await reap(t.pid);
  await sleep(1000);
  amberOk(['restore', '-D', dir, '-d']);
  const restored = Date.now();
  const exit = await reap(t.pid, 10_000);
  const after = (Date.now() - restored) / 1000;
  assert.equal(exit.code, 0, `sleep exits 0 (${exit.text})`);
  // what was left of its 2 s when it was dumped, give or take the dump's own time
  assert.ok(after > 2 - slept - 0.5 && after < 2 - slept + 0.7, `slept ${after.toFixed(2)} s after restore, ${slept.toFixed(2)} s before the dump`);
});

test('sqlite3 holding a WAL database keeps its locks across restore: another connection inserts, it goes on', async () => {
  const work = makeTmpDir('sqlite-wal');
  const db = join(work, 'wal.db');
  const fifo = join(work, 'commands');
  execFileSync('mkfifo', [fifo]);
  // the test holds the FIFO's write end (O_RDWR never blocks), so sqlite3 never sees EOF
  const commands = openSync(fifo, constants.O_RDWR);
  try {
    const say = (sql: string) => writeSync(commands, `${sql}\n`);
    const t = await startTarget('sqlite3', ['-c', 'echo READY $$; exec sqlite3 -batch "$1" <"$2"', 'sh', db, fifo], { binary: '/bin/sh', workdir: work });
    say("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1); SELECT 'count', count(*) FROM t;");
    assert.ok(await eventually(() => readLog(t).includes('count|1'), 5000), `sqlite3 answers before the dump: ${readLog(t)}`);
    const locksBefore = posixLocks(t.pid);
    assert.ok(locksBefore.length > 0, 'sqlite3 holds POSIX locks (the -shm DMS lock)');
    const dir = makeTmpDir('sqlite-wal-img');
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    await reap(t.pid);
    amberOk(['restore', '-D', dir, '-d']);
    assert.deepEqual(posixLocks(t.pid), locksBefore, 'the same POSIX locks after restore');
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
    execFileSync('sqlite3', [db, 'INSERT INTO t VALUES (2);']);
    say("INSERT INTO t VALUES (3); SELECT 'count', count(*) FROM t;");
    assert.ok(await eventually(() => readLog(t).includes('count|3'), 5000), `the restored sqlite3 sees the other insert and adds its own: ${readLog(t)}`);
    assert.ok(isAlive(t.pid), 'the restored sqlite3 is alive');
    assert.equal(execFileSync('sqlite3', [db, 'SELECT count(*) FROM t;'], { encoding: 'utf8' }).trim(), '3');
  } finally {
    closeSync(commands);
  }
});

test('a POSIX lock on a mapped file is still held after restore, and compare notices when it is gone (and a changed close-on-exec flag)', async () => {
  const t = await startTarget('locked_map', [WORKDIR]);
  const locks = posixLocks(t.pid);
  assert.equal(locks.length, 1, 'one POSIX lock before the dump');
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`locked-map-img-${round}`);
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    await reap(t.pid);
    amberOk(['restore', '-D', dir, '-d']);
    assert.deepEqual(posixLocks(t.pid), locks, `round ${round}: the same lock`);
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `locked_map's own checks: ${v.lines.join(' | ')}`);

  const u = await startTarget('locked_map', [WORKDIR]);
  const dir2 = makeTmpDir('locked-map-img2');
  amberOk(['dump', '-t', String(u.pid), '-D', dir2, '--leave-running']);
  kill(u.pid, SIG.USR2);
  assert.ok(await eventually(() => posixLocks(u.pid).length === 0, 5000), 'the target dropped its lock');
  const r = amber(['compare', '-t', String(u.pid), '-D', dir2]);
  assert.notEqual(r.status, 0, describeAmber(['compare'], r));
  assert.match(r.stdout, /fd 3 lock: expected write POSIX lock on bytes 0-99, found none/, 'compare names the lock');
  assert.match(r.stdout, /fd 3 close-on-exec/, 'compare names the close-on-exec flag');
});

/** What /proc shows of a zombie: name, state and signal masks. */
function zombieStatus(pid: number): string {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return ['Name', 'State', 'SigBlk', 'SigIgn', 'SigCgt'].map((f) => new RegExp(`^${f}:\\s*(.*)$`, 'm').exec(status)?.[0]).join(' | ');
}

test('zombies (one killed by SIGKILL) come back with their name, masks and exit status', async () => {
  const t = await startTarget('zombies');
  const kids = readFileSync(`/proc/${t.pid}/task/${t.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(kids.length, 2);
  assert.ok(await eventually(() => kids.every((k) => readFileSync(`/proc/${k}/stat`, 'utf8').includes(') Z ')), 5000), 'both children are zombies');
  const before = kids.map(zombieStatus);
  const dir = makeTmpDir('zombies-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of [t.pid, ...kids]) await reap(pid);
  amberOk(['restore', '-D', dir, '-d']);
  assert.deepEqual(kids.map(zombieStatus), before, 'the zombies as they were');
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `zombies' own checks: ${v.lines.join(' | ')}`);
});

test('a memfd and a deleted file held as fd and mapping, and shared memory mapped before two forks, stay one object each', async () => {
  const t = await startTarget('shared_identity', [WORKDIR]);
  const pids = descendants(t.pid);
  assert.equal(pids.length, 3);
  const dir = makeTmpDir('identity-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of pids) await reap(pid);
  amberOk(['restore', '-D', dir, '-d']);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `shared_identity's own checks: ${v.lines.join(' | ')}`);
});

test('compare reports shared memory that is a copy in one holder, even with equal contents', async () => {
  const t = await startTarget('shared_identity', [WORKDIR]);
  const [, childA] = descendants(t.pid);
  const dir = makeTmpDir('identity-broken-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  kill(childA, SIG.USR2);
  await sleep(300);
  for (const extra of [[], ['--pages']]) {
    const r = amber(['compare', '-t', String(t.pid), '-D', dir, ...extra]);
    assert.notEqual(r.status, 0, describeAmber(['compare', ...extra], r));
    assert.match(r.stdout, new RegExp(`pid ${childA}[\\s\\S]*identity of shmem:`), `compare ${extra.join(' ')} names the broken identity`);
  }
});

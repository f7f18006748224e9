import assert from 'node:assert/strict';
import { closeSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { addressOf, listMsgQueues, listSemSets, listShmSegments, removeIpcObject, shmRemove, SYS, syscallRaw } from '@amber/core';
import { interruptTrials } from '../harness/interrupt';
import {
  amber, amberOk, assertOneLineError, cleanup, critDecode, descendants, isAlive, makeTmpDir, parentOf, reap, startTarget, verdict, type Target,
} from '../harness';

after(cleanup);

// Keys and queue names of this test run only (ipc uses KEY, KEY+1, KEY+2): every object with them is ours.
let nextKey = (0x1c000000 | ((process.pid & 0xfff) << 8)) >>> 0;
const keysInUse: number[] = [];
const mqNames: string[] = [];
let runs = 0;
function newRun(): { key: number; mq: string } {
  const key = nextKey;
  nextKey += 4;
  keysInUse.push(key, key + 1, key + 2);
  const mq = `/amber-ipc-test-${process.pid}-${++runs}`;
  mqNames.push(mq);
  return { key, mq };
}

/** Objects of the host's namespace with our keys, or those of one run (KEY..KEY+2); the private ones our targets made are removed by id. */
const ours = (key?: number) => {
  const mine = (k: number) => (key === undefined ? keysInUse.includes(k >>> 0) : (k >>> 0) - key >= 0 && (k >>> 0) - key <= 2);
  return {
    msg: listMsgQueues().filter((q) => mine(q.key)),
    sem: listSemSets().filter((s) => mine(s.key)),
    shm: listShmSegments().filter((s) => mine(s.key)),
  };
};
const privateIds = { msg: new Set<number>(), shm: new Set<number>() };

function unlinkMq(name: string): void {
  const bare = Buffer.from(`${name.slice(1)}\0`);
  syscallRaw(SYS.mq_unlink, [addressOf(bare)]);
}

function removeOurs(): void {
  const o = ours();
  for (const q of o.msg) removeIpcObject('msg', q.id);
  for (const s of o.sem) removeIpcObject('sem', s.id);
  for (const s of o.shm) shmRemove(s.id);
  for (const id of privateIds.msg) if (listMsgQueues().some((q) => q.id === id && q.key === 0)) removeIpcObject('msg', id);
  for (const id of privateIds.shm) if (listShmSegments().some((s) => s.id === id && s.key === 0)) shmRemove(id);
  for (const name of mqNames) unlinkMq(name);
}
after(removeOurs);

async function started(ns: 'own' | 'host', notify?: 'notify' | 'notify-none'): Promise<{ t: Target; key: number; mq: string }> {
  const { key, mq } = newRun();
  if (notify) mqNames.push(`${mq}-n`);
  const t = await startTarget('ipc', [ns, `0x${key.toString(16)}`, mq, ...(notify ? [notify] : [])]);
  assert.equal(descendants(t.pid).length, 3, 'the target and its two children');
  return { t, key, mq };
}

async function dumpAndReap(t: Target, dir: string, extra: string[] = []): Promise<number[]> {
  const pids = descendants(t.pid);
  amberOk(['dump', '-t', String(t.pid), '-D', dir, ...extra]);
  for (const pid of pids) assert.equal((await reap(pid)).signal, 9, `pid ${pid} killed by the dump`);
  return pids;
}

interface Desc {
  key: number;
  id: number;
  mode: number;
}

/** What crit reads in the images of the IPC objects: the format is CRIU's. */
function checkImagesWithCrit(dir: string, key: number): { msgIds: number[]; semId: number } {
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.img') && !f.startsWith('pages-'))) critDecode(join(dir, f));
  const msg = critDecode(join(dir, 'ipcns-msg-1.img'));
  assert.equal(msg.magic, 'IPCNS_MSG');
  const q = msg.entries.find((e) => (e.desc as Desc).key === key + 1)!;
  assert.ok(q, `queue with key ${key + 1}`);
  assert.equal(q.qbytes, 9000);
  assert.equal(q.qnum, 4);
  const extra = q.extra as (Record<string, unknown> | string)[];
  assert.deepEqual(extra.filter((_, i) => i % 2 === 0).map((m) => [Number((m as Record<string, unknown>).mtype), (m as Record<string, unknown>).msize]), [[1, 1], [2, 100], [3, 3000], [7, 0]]);
  const sem = critDecode(join(dir, 'ipcns-sem-1.img'));
  assert.equal(sem.magic, 'IPCNS_SEM');
  const s = sem.entries.find((e) => (e.desc as Desc).key === key + 2)!;
  assert.equal(s.nsems, 3);
  assert.deepEqual(s.extra, [2, 2, 6]);
  assert.equal((s.desc as Desc).mode & 0o777, 0o660);
  const files = critDecode(join(dir, 'files.img')).entries;
  assert.ok(files.some((e) => e.type === undefined), 'the POSIX queue (an amber fd type crit does not name) is in files.img');
  return { msgIds: msg.entries.map((e) => (e.desc as Desc).id), semId: (s.desc as Desc).id };
}

for (const ns of ['own', 'host'] as const) {
  test(`every IPC object kind comes back in the ${ns === 'own' ? "tree's own IPC namespace" : "host's IPC namespace"}, with ids, keys, modes, contents, sharing and a child's SEM_UNDO, twice in a row`, async () => {
    const { t, key } = await started(ns);
    const ids = () => ({ msg: ours(key).msg.map((q) => q.id), sem: ours(key).sem.map((s) => s.id), shm: ours(key).shm.map((s) => s.id) });
    const liveIds = ids();
    for (let round = 1; round <= 2; round++) {
      const dir = makeTmpDir(`ipc-${ns}-${round}`);
      await dumpAndReap(t, dir);
      const { msgIds, semId } = checkImagesWithCrit(dir, key);
      if (ns === 'host') {
        for (const id of msgIds) privateIds.msg.add(id);
        assert.deepEqual(ours(key), { msg: [], sem: [], shm: [] }, `round ${round}: the dump took the tree's objects with it`);
        assert.deepEqual([semId], liveIds.sem, "the dumped set is the target's");
      }
      if (ns === 'own') assert.ok(readdirSync(dir).includes('ipcns-var-1.img'), 'the namespace\'s sysctls');
      amberOk(['restore', '-D', dir, '-d']);
      assert.ok(isAlive(t.pid), `round ${round}: pid ${t.pid} is back`);
      const [theirs, mine] = [statSync(`/proc/${t.pid}/ns/ipc`).ino, statSync('/proc/self/ns/ipc').ino];
      if (ns === 'own') assert.notEqual(theirs, mine, `round ${round}: the tree is in an IPC namespace of its own`);
      else assert.equal(theirs, mine, `round ${round}: the tree is in the host's IPC namespace`);
      if (ns === 'host') assert.deepEqual(ids(), liveIds, `round ${round}: the same ids`);
      const r = amberOk(['compare', '-t', String(t.pid), '-D', dir]);
      assert.match(r.stdout, /matches/);
    }
    const v = await verdict(t);
    assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
  });
}

test('an IPC id taken at restore stops it with one line naming the id, and nothing is left behind', async () => {
  const { t, key } = await started('host');
  const dir = makeTmpDir('ipc-taken');
  const pids = descendants(t.pid);
  // --leave-running keeps the objects; the tree then goes, its queues, set and named queue stay
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  const { msgIds } = checkImagesWithCrit(dir, key);
  for (const id of msgIds) privateIds.msg.add(id);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  for (const pid of pids) await reap(pid);
  // (other processes of this machine make and remove objects meanwhile: only ours are compared)
  const idsOfOurs = () => {
    const o = ours(key);
    return { msg: o.msg.map((q) => [q.id, q.qnum]), sem: o.sem.map((x) => x.id), shm: o.shm.map((x) => x.id) };
  };
  const before = idsOfOurs();
  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args);
  assertOneLineError(args, r, /msg queue id \d+ \(key 0x[0-9a-f]+\) cannot be restored: its id is taken by msg queue id \d+/);
  for (const pid of pids) if (parentOf(pid) === process.pid) await reap(pid);
  for (const pid of pids) assert.ok(!isAlive(pid), `pid ${pid} is not left behind`);
  const now = idsOfOurs();
  assert.deepEqual(now, before, 'none of our IPC objects made or removed');
});

test('a dump that fails with POSIX messages taken off their queue, or just before its end, loses no message and no SEM_UNDO adjustment', async () => {
  const { t, key } = await started('host');
  const snapshot = () => ({ msg: ours(key).msg.map((q) => [q.id, q.qnum, q.cbytes]), sem: ours(key).sem.map((s) => s.id), shm: ours(key).shm.map((s) => s.id) });
  const before = snapshot();
  for (const point of ['dump:mqueue-taken', 'dump:before-inventory', 'dump:after-ipc']) {
    const dir = makeTmpDir('ipc-fault');
    const args = ['dump', '-t', String(t.pid), '-D', dir];
    const r = amber(args, { env: { AMBER_FAULT: point } });
    assertOneLineError(args, r, new RegExp(`injected fault at ${point}`));
    assert.ok(isAlive(t.pid), `${point}: the target runs on`);
    assert.deepEqual(snapshot(), before, `${point}: every queue, set and segment as it was`);
  }
  // the target checks every message (both kinds, in order) and the child's undo applied at its exit
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('a POSIX queue with a notification registered is refused at dump in one line (its sigev_value cannot be read), and the tree runs on', async () => {
  const { t, mq } = await started('host', 'notify');
  const dir = makeTmpDir('ipc-notify');
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assertOneLineError(args, r, new RegExp(`POSIX queue ${mq}-n has a notification registered by pid ${t.pid} \\(sigev_notify 0, signal 12\\)`));
  assert.ok(isAlive(t.pid), 'the target runs on');
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

for (const ns of ['own', 'host'] as const) {
  test(`a restore failing after the IPC objects were made (${ns} namespace) leaves none of them, and no task, behind; the next restore works`, async () => {
    const { t, mq, key } = await started(ns);
    const dir = makeTmpDir(`ipc-undo-${ns}`);
    const thisRun = () => ours(key);
    const pids = await dumpAndReap(t, dir);
    for (const point of ['restore:shared', 'restore:resources']) {
      const args = ['restore', '-D', dir, '-d'];
      const r = amber(args, { env: { AMBER_FAULT: point } });
      assertOneLineError(args, r, new RegExp(`injected fault at ${point}`));
      for (const pid of pids) if (parentOf(pid) === process.pid) await reap(pid);
      for (const pid of pids) assert.ok(!isAlive(pid), `${point}: pid ${pid} is not left behind`);
      assert.deepEqual(thisRun(), { msg: [], sem: [], shm: [] }, `${point}: no queue, set or segment of the target's is left`);
      assert.equal(mqueueExists(mq), false, `${point}: the POSIX queue is not left`);
    }
    amberOk(['restore', '-D', dir, '-d']);
    const v = await verdict(t);
    assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
  });
}

/** Whether a POSIX queue of amber's (the host's) namespace exists: mq_open without O_CREAT. */
function mqueueExists(name: string): boolean {
  const bare = Buffer.from(`${name.slice(1)}\0`);
  const fd = syscallRaw(SYS.mq_open, [addressOf(bare), 0, 0, 0]);
  if (fd >= 0) closeSync(fd);
  return fd >= 0;
}

test('a SIGEV_NONE notification of a queue holding a message is kept through a failed dump and comes back with a restore', async () => {
  const { t } = await started('own', 'notify-none');
  // the dump takes the message and puts it back, which fires the notification: it is registered again
  const failed = makeTmpDir('ipc-none-fault');
  const args = ['dump', '-t', String(t.pid), '-D', failed];
  assertOneLineError(args, amber(args, { env: { AMBER_FAULT: 'dump:before-inventory' } }), /injected fault/);
  const dir = makeTmpDir('ipc-none');
  await dumpAndReap(t, dir);
  amberOk(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

for (const ns of ['host', 'own'] as const) {
  test(`SIGINT/SIGTERM during dumps of the ipc tree (${ns} namespace), at random moments, lose no message, value or undo`, async () => {
    const { t } = await started(ns);
    const r = await interruptTrials(t, ['dump', 'pre-dump', 'dump'], ['SIGINT', 'SIGTERM'], 150, 6);
    console.log(`# ipc (${ns}): ${r.done} interrupted, ${r.late} finished first, slowest run ${r.maxMs} ms`);
  });
}

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { addressOf, IPC, listShmSegments, SHM, shmAttach, shmDetach, shmidDsForSet, shmRemove, shmStatIfExists, SYS, syscall } from '@amber/core';
import {
  amber, amberOk, assertOneLineError, cleanup, critDecode, descendants, diffSnapshots, isAlive, parentOf, makeTmpDir, reap, snapshotProc, startTarget, verdict,
  type Target,
} from '../harness';

after(cleanup);

// Keys of this test run only (sysv_shm uses KEY, KEY+1, KEY+2); every segment with them is ours.
let nextKey = (0x5e000000 | ((process.pid & 0xfff) << 8)) >>> 0;
const keysInUse: number[] = [];
function newKey(): number {
  const k = nextKey;
  nextKey += 4;
  keysInUse.push(k, k + 1, k + 2);
  return k;
}
const ours = () => listShmSegments().filter((s) => keysInUse.includes(s.key >>> 0));
/** Targets of this test: a private segment one of them made (B) is ours too, once nobody holds it. */
const targetPids = new Set<number>();
after(() => {
  for (const s of ours()) shmRemove(s.id);
  // B outlives a test that failed before it was marked removed again
  for (const s of listShmSegments()) if (s.key === 0 && s.nattch === 0 && targetPids.has(s.cpid)) shmRemove(s.id);
});

interface DumpedShm {
  desc: { key: number; id: number; mode: number; uid: number; gid: number; cuid: number; cgid: number };
  size: number;
  in_pagemaps?: boolean;
  extra?: string;
}
const dumpedSegments = (dir: string) => critDecode(join(dir, 'ipcns-shm-1.img')).entries as DumpedShm[];

/** Reaps what a failed restore killed: the child, orphaned, came to us, the subreaper. */
async function reapFailedRestore(pids: number[]): Promise<void> {
  for (const pid of pids) if (parentOf(pid) === process.pid) await reap(pid);
  for (const pid of pids) assert.ok(!isAlive(pid), `pid ${pid} is gone`);
}

/** Dumps the target's tree (it is killed) and reaps it: the child was reparented to us, the subreaper. */
async function dumpAndReap(t: Target, dir: string): Promise<number[]> {
  const pids = descendants(t.pid);
  assert.equal(pids.length, 2, `parent and child: ${pids.join(' ')}`);
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of pids) {
    const exit = await reap(pid);
    assert.equal(exit.signal, 9, `pid ${pid}: ${exit.text}`);
  }
  return pids;
}

async function started(): Promise<{ t: Target; key: number }> {
  const key = newKey();
  const t = await startTarget('sysv_shm', [`0x${key.toString(16)}`]);
  targetPids.add(t.pid);
  return { t, key };
}

test('SysV segments come back with their ids, keys, modes, owners, contents and holders, twice in a row', async () => {
  const { t } = await started();
  const before = snapshotProc(t.pid);
  const ids = ours().map((s) => s.id).sort();
  assert.equal(ids.length, 3, 'A, C and D have our keys (B is removed)');
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`shm-${round}`);
    await dumpAndReap(t, dir);
    assert.deepEqual(ours(), [], `round ${round}: the dump took the tree's segments with it`);
    amberOk(['restore', '-D', dir, '-d']);
    assert.ok(isAlive(t.pid), `round ${round}: pid ${t.pid} is back`);
    assert.deepEqual(ours().map((s) => s.id).sort(), ids, `round ${round}: same ids`);
    // a restored pipe is a new pipe: only its inode number may change
    const diffs = diffSnapshots(before, snapshotProc(t.pid)).filter((d) => !/: link pipe:\[\d+\] -> pipe:\[\d+\]$/.test(d));
    assert.deepEqual(diffs, [], `round ${round}: maps, status and fds as before`);
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `sysv_shm's own checks: ${v.lines.join(' | ')}`);
  assert.deepEqual(ours(), [], 'the target removed its segments');
});

test('crit decodes the segments: descs, inline contents, and only the present pages of a large one', async () => {
  const { t, key } = await started();
  const dir = makeTmpDir('shm-crit');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.img') && !n.startsWith('pages-'))) critDecode(join(dir, f));
  const segs = dumpedSegments(dir);
  const live = new Map(ours().map((s) => [s.key >>> 0, s]));
  const byKey = (k: number) => segs.find((s) => s.desc.key === k);
  assert.equal(segs.length, 4, JSON.stringify(segs.map((s) => s.desc)));
  for (const [k, mode, uid, gid, cuid, cgid, size] of [[key, 0o2640, 0, 0, 0, 0, 3 * 4096 + 100], [key + 1, 0o604, 1234, 2345, 4321, 5432, 8192], [key + 2, 0o600, 0, 0, 0, 0, 2 << 20]]) {
    const s = byKey(k);
    assert.ok(s, `key 0x${k.toString(16)} dumped`);
    assert.deepEqual([s.desc.id, s.desc.mode, s.desc.uid, s.desc.gid, s.desc.cuid, s.desc.cgid, Number(s.size)], [live.get(k)!.id, mode, uid, gid, cuid, cgid, size]);
  }
  const removed = segs.filter((s) => s.desc.key === 0);
  assert.equal(removed.length, 1);
  assert.equal(removed[0].desc.mode, 0o1600, 'B: marked removed (SHM_DEST)');
  // C's contents inline, after its entry: the target's pattern, seed 7
  const c = Buffer.from(byKey(key + 1)!.extra!, 'base64');
  assert.equal(c.length, 8192);
  assert.ok(c.every((b, i) => b === ((7 * 29 + i * 13 + (i >> 12)) & 0xff)), 'C contents');
  // D, 2 MiB with pages 0 and 300 written, in pagemap-shmem-<id>: those two pages only
  const d = byKey(key + 2)!;
  assert.equal(d.in_pagemaps, true);
  const pm = critDecode(join(dir, `pagemap-shmem-${d.desc.id}.img`)).entries;
  assert.deepEqual(pm.slice(1).map((e) => [e.vaddr, e.nr_pages]), [[0, 1], [300 * 4096, 1]]);
  const v = await verdict(t);
  assert.ok(v.passed, `--leave-running leaves the segments as they were: ${v.lines.join(' | ')}`);
});

test('compare reports a segment whose mode changed after the restore', async () => {
  const { t, key } = await started();
  const dir = makeTmpDir('shm-compare');
  await dumpAndReap(t, dir);
  amberOk(['restore', '-D', dir, '-d']);
  const c = ours().find((s) => s.key >>> 0 === key + 1)!;
  const buf = shmidDsForSet(c.uid, c.gid, 0o600);
  syscall('shmctl(IPC_SET)', SYS.shmctl, [c.id, IPC.SET, addressOf(buf)]);
  const r = amber(['compare', '-t', String(t.pid), '-D', dir]);
  assert.notEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, new RegExp(`shm id ${c.id}: mode.*0604.*0600`));
  syscall('shmctl(IPC_SET)', SYS.shmctl, [c.id, IPC.SET, addressOf(shmidDsForSet(c.uid, c.gid, 0o604))]);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a segment id taken at restore: one line naming it, nothing left behind, and the restore works once it is free', async () => {
  const { t, key } = await started();
  const dir = makeTmpDir('shm-taken');
  const pids = await dumpAndReap(t, dir);
  const a = dumpedSegments(dir).find((s) => s.desc.key === key)!;
  const dumpedIds = dumpedSegments(dir).map((s) => s.desc.id);
  // another process's segment gets A's id
  writeFileSync('/proc/sys/kernel/shm_next_id', String(a.desc.id));
  const squatter = syscall('shmget', SYS.shmget, [IPC.PRIVATE, 4096, IPC.CREAT | 0o600]);
  try {
    assert.equal(squatter, a.desc.id);
    const args = ['restore', '-D', dir, '-d'];
    assertOneLineError(args, amber(args), new RegExp(`shm id ${a.desc.id} \\(key 0x${key.toString(16)}\\) is taken`));
    await reapFailedRestore(pids);
    assert.deepEqual(dumpedIds.filter((id) => id !== squatter && shmStatIfExists(id)), [], 'no segment left behind');
    assert.equal(readFileSync('/proc/sys/kernel/shm_next_id', 'utf8').trim(), '-1');
    assert.ok(shmStatIfExists(squatter), 'the other segment is untouched');
  } finally {
    shmRemove(squatter);
  }
  amberOk(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a restore failing after the segments were made removes them', async () => {
  const { t } = await started();
  const dir = makeTmpDir('shm-fail');
  const pids = await dumpAndReap(t, dir);
  const dumpedIds = dumpedSegments(dir).map((s) => s.desc.id);
  const r = amber(['restore', '-D', dir, '-d'], { env: { AMBER_FAULT: 'restore:memory' } });
  assert.notEqual(r.status, 0, r.stderr);
  assert.match(r.stderr, /injected fault at restore:memory/);
  await reapFailedRestore(pids);
  assert.deepEqual(dumpedIds.filter((id) => shmStatIfExists(id)), [], 'no segment left behind');
  amberOk(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a segment also attached outside the tree is refused, and the tree keeps running as it was', async () => {
  const { t, key } = await started();
  const a = ours().find((s) => s.key >>> 0 === key)!;
  const at = shmAttach(a.id, SHM.RDONLY);
  try {
    const dir = makeTmpDir('shm-outside');
    const args = ['dump', '-t', String(t.pid), '-D', dir];
    assertOneLineError(args, amber(args), new RegExp(`shm id ${a.id} \\(key 0x${key.toString(16)}\\) attached by pid ${t.pid}.* is also attached outside the tree`));
    assert.ok(!readdirSync(dir).includes('inventory.img'));
  } finally {
    shmDetach(at);
  }
  assert.equal(ours().filter((s) => [key, key + 1, key + 2].includes(s.key >>> 0)).length, 3, 'the segments are all there');
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('pre-dump of a tree with SysV segments, then the final dump: the segments come back from it', async () => {
  const { t } = await started();
  const base = makeTmpDir('shm-predump');
  const [pre, fin] = [join(base, '1'), join(base, '2')];
  amberOk(['pre-dump', '-t', String(t.pid), '-D', pre]);
  assert.ok(isAlive(t.pid), 'a pre-dump leaves the tree running');
  assert.equal(readdirSync(pre).filter((f) => f.startsWith('ipcns-')).length, 0, 'a pre-dump is memory only');
  const pids = descendants(t.pid);
  amberOk(['dump', '-t', String(t.pid), '-D', fin, '--prev-images-dir', '../1']);
  for (const pid of pids) await reap(pid);
  amberOk(['restore', '-D', fin, '-d']);
  amberOk(['compare', '-t', String(t.pid), '-D', fin]);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a dump interrupted after the segments were read leaves them, and the tree, as they were', async () => {
  const { t, key } = await started();
  const before = ours().filter((s) => [key, key + 1, key + 2].includes(s.key >>> 0));
  const dir = makeTmpDir('shm-interrupted');
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args, { env: { AMBER_FAULT: 'dump:before-inventory' } });
  assert.notEqual(r.status, 0, r.stderr);
  assert.match(r.stderr, /injected fault at dump:before-inventory/);
  const now = ours().filter((s) => [key, key + 1, key + 2].includes(s.key >>> 0));
  assert.deepEqual(now.map((s) => [s.id, s.key, s.mode, s.nattch, s.size]), before.map((s) => [s.id, s.key, s.mode, s.nattch, s.size]));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('without the ipc plugin a SysV mapping is refused in one line, at dump and at restore, and nothing is lost', async () => {
  const { t } = await started();
  const skipped = ['dump', '-t', String(t.pid), '-D', makeTmpDir('shm-skip-dump'), '--skip', 'ipc'];
  assertOneLineError(skipped, amber(skipped), new RegExp(`^amber: pid ${t.pid}: mapping 0x[0-9a-f]+-0x[0-9a-f]+ is SysV shared memory \\(/SYSV[0-9a-f]{8} \\(deleted\\)\\), which only the ipc plugin dumps, and it is not in this dump$`));
  assert.ok(isAlive(t.pid));
  const dir = makeTmpDir('shm-skip-restore');
  const pids = await dumpAndReap(t, dir);
  const ids = dumpedSegments(dir).map((s) => s.desc.id);
  const restore = ['restore', '-D', dir, '-d', '--skip', 'ipc'];
  const r = amber(restore);
  assertOneLineError(restore, r, /VMA 0x[0-9a-f]+ is SysV shared memory \(shm id \d+\), and the ipc plugin that restores it is not in this restore/);
  assert.ok(ids.includes(Number(/shm id (\d+)/.exec(r.stderr)![1])), r.stderr);
  await reapFailedRestore(pids);
  amberOk(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

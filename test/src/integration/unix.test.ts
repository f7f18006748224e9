import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, amberOk, assertOneLineError, cleanup, critDecode, descendants, diffSnapshots, isAlive, makeTmpDir, reap, sleep, snapshotProc, startTarget, verdict, WORKDIR,
} from '../harness';

after(cleanup);

// a restored socket or pipe is a new one: only its inode number may change
const notSocketInode = (d: string) => !/: link (socket|pipe):\[\d+\] -> (socket|pipe):\[\d+\]$/.test(d);

test('unix sockets of every kind come back with their names, peers, queues, options and shutdowns, twice in a row', async () => {
  const t = await startTarget('unix_socks', [WORKDIR]);
  const before = snapshotProc(t.pid);
  const pids = descendants(t.pid);
  assert.equal(pids.length, 2, 'the target and its child');
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`unix-${round}`);
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    for (const pid of pids) assert.equal((await reap(pid)).signal, 9, `round ${round}: pid ${pid} killed by the dump`);
    amberOk(['restore', '-D', dir, '-d']);
    assert.ok(isAlive(t.pid), `round ${round}: pid ${t.pid} is back`);
    assert.deepEqual(diffSnapshots(before, snapshotProc(t.pid)).filter(notSocketInode), [], `round ${round}: fd table as before`);
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('--leave-running leaves every unix socket queue in place', async () => {
  const t = await startTarget('unix_socks', [WORKDIR]);
  const dir = makeTmpDir('unix-leave');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test("crit decodes the unix entries of files.img and sk-queues.img, with the stream pair's 10 KiB and the records' boundaries", async () => {
  const t = await startTarget('unix_socks', [WORKDIR]);
  const dir = makeTmpDir('unix-crit');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  const images = readdirSync(dir).filter((f) => f.endsWith('.img') && !f.startsWith('pages-'));
  for (const f of images) critDecode(join(dir, f));
  const files = critDecode(join(dir, 'files.img')).entries.filter((e) => e.type === 'UNIXSK');
  const types = new Set(files.map((e) => e.usk.type));
  for (const k of [1, 2, 5]) assert.ok(types.has(k), `SOCK_* ${k} in ${[...types].join(' ')}`);
  const listener = files.find((e) => e.usk.state === 10 /* TCP_LISTEN */);
  assert.ok(listener, 'a listening socket');
  assert.equal(listener.usk.backlog, 5);
  assert.ok(listener.usk.file_perms, 'the socket file owner and mode');
  assert.equal(listener.usk.file_perms.mode, 0o640);
  assert.ok(files.some((e) => e.usk.deleted === true), 'a bound path since deleted');
  assert.ok(files.some((e) => e.usk.name_dir), 'a relative bind with its directory');
  assert.ok(files.some((e) => e.usk.shutdown === 'WRITE'), 'a socket shut for writing');
  const queues = critDecode(join(dir, 'sk-queues.img'));
  assert.equal(queues.magic, 'SK_QUEUES');
  const lengths = queues.entries.map((e) => e.length as number);
  assert.ok(lengths.includes(10 * 1024), `10 KiB stream data in ${lengths.join(' ')}`);
  const seqpacket = files.find((e) => e.usk.type === 5 && queues.entries.some((q) => q.id_for === e.id));
  assert.ok(seqpacket, 'a seqpacket socket with queued records');
  const records = queues.entries.filter((q) => q.id_for === seqpacket.id).map((q) => Buffer.from(q.extra, 'base64').toString());
  assert.deepEqual(records, ['s1', 'seq-two']);
  const withFds = queues.entries.find((q) => q.scm?.length);
  assert.ok(withFds, 'a record carrying files in flight');
  assert.equal(withFds.scm[0].rights.length, 2);
  const ids = new Set(critDecode(join(dir, 'files.img')).entries.map((e) => e.id));
  for (const id of withFds.scm[0].rights) assert.ok(ids.has(id), `file ${id} in flight is a description of files.img`);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a bound path taken by a file that is not the dumped socket stops the restore with one line naming it, and nothing is left', async () => {
  const t = await startTarget('unix_socks', [WORKDIR]);
  const dir = makeTmpDir('unix-taken');
  const pids = descendants(t.pid);
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of pids) await reap(pid);
  const path = join(t.workdir, 'listen.sock');
  const { rmSync, writeFileSync } = await import('node:fs');
  rmSync(path);
  writeFileSync(path, 'not a socket');
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amber(args), new RegExp(`cannot bind its unix socket to ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the path is taken by a file that is not a socket`));
  for (const pid of pids) assert.ok(!isAlive(pid), `nothing half-restored is left (pid ${pid})`);
  assert.ok(existsSync(path), 'the file at the path is left alone');
});

test('redis-server on a unix socket, with a client of the tree holding one connection in a command loop: keys kept, same connection, no reconnect', async () => {
  const t = await startTarget('redis_client', [WORKDIR]);
  const pids = descendants(t.pid);
  assert.equal(pids.length, 2, `the client and its redis-server: ${pids.join(' ')}`);
  assert.match(readFileSync(`/proc/${pids[1]}/cmdline`, 'utf8'), /^redis-server/);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`unix-redis-${round}`);
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    for (const pid of pids) assert.equal((await reap(pid)).signal, 9, `round ${round}: pid ${pid} killed by the dump`);
    amberOk(['restore', '-D', dir, '-d']);
    for (const pid of pids) assert.ok(isAlive(pid), `round ${round}: pid ${pid} is back`);
    // (no compare here: the client runs on at once, so its queues are not the dumped ones any more)
    // the loop goes on between rounds: INCRs answered on the restored connection
    await sleep(200);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `client's own checks: ${v.lines.join(' | ')}`);
});

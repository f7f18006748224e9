import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, amberInHost, cleanup, describeAmber, inHost, makeHostPair, makeTmpDir, nftTables, reap, removeAllHosts, sleep,
  startPeer, startTarget, stopPeers, until, WORKDIR, type AmberResult, type Host, type Peer,
} from '../harness';

// The network lock through amber: whatever fails, no rule of amber's stays behind, and the
// connection goes on. The target is a real server (redis) on host A, its client on host B.

after(async () => {
  stopPeers();
  await cleanup();
  removeAllHosts();
});

/** Every fault point of a dump; net-tcp's own (dump:after-net-tcp) and the two after it hold the lock. */
const DUMP_POINTS = ['dump:after-seize', 'dump:after-cores', 'dump:after-mm', 'dump:after-fs', 'dump:after-net-tcp', 'dump:before-inventory'];
/**
 * The restore's fault points before the sockets go live: the lock is taken again at the end of
 * the shared phase. (restore:resume and restore:resume-thread come after the sockets left repair
 * mode: a failure there kills live sockets, whose peers are then told so.)
 */
const RESTORE_POINTS = ['restore:tree', 'restore:namespaces', 'restore:shared', 'restore:resources', 'restore:memory', 'restore:after-threads', 'restore:task-state'];
const LIMIT_MS = 60_000;

const amberTables = (h: Host) => nftTables(h).filter((t) => /amber-/.test(t));

function assertInjected(args: string[], r: AmberResult, point: string): void {
  const how = describeAmber(args, r);
  assert.notEqual(r.status, 0, how);
  assert.equal(r.stderr.trim(), `amber: injected fault at ${point} (AMBER_FAULT)`, how);
}

async function redisWithClient(label: string) {
  const hosts = makeHostPair(label);
  const { a, b } = hosts;
  const script = 'echo READY $$; exec redis-server --bind "$2" --port 6379 --save "" --appendonly no --dir "$1" --protected-mode no';
  const redis = await startTarget('redis-server', ['-c', script, 'sh', WORKDIR, a.ipv4], { binary: '/bin/sh', netns: a.nsPath });
  assert.ok(await until(() => inHost(a, ['ss', '-Htln', 'sport = :6379']).stdout.trim() !== '', 10_000), 'redis listens');
  const client = await startPeer(b, 'redis', a.ipv4, 6379);
  const id = String((await client.waitFor((e) => e.ev === 'connected')).clientId);
  return { hosts, a, b, redis, client, id };
}

/** The client gets n more replies on its connection, and it is the same one. */
async function stillWorks(client: Peer, id: string, n = 10): Promise<void> {
  const start = (await client.stats()).answers;
  const deadline = Date.now() + 15_000;
  while ((await client.stats()).answers < start + n) {
    if (Date.now() > deadline) assert.fail(`no ${n} more replies: ${JSON.stringify(await client.stats())}`);
    await sleep(20);
  }
  const s = await client.stats();
  assert.equal(s.closed, null, JSON.stringify(s));
  assert.equal(await client.clientId(), id, 'the same connection');
}

test('a dump failing at any fault point leaves no lock behind, and the connection goes on', async (t) => {
  const { hosts, a, redis, client, id } = await redisWithClient('lockfault');
  t.after(() => hosts.remove());
  const logDir = makeTmpDir('lockfault-log');
  for (const point of DUMP_POINTS) {
    const log = join(logDir, `${point.replace(/:/g, '-')}.log`);
    const args = ['dump', '-t', String(redis.pid), '-D', makeTmpDir('lockfault'), '--tcp-established', '-v', '-o', log];
    const r = amber(args, { env: { AMBER_FAULT: point }, timeoutMs: LIMIT_MS });
    assertInjected(args, r, point);
    const locked = readFileSync(log, 'utf8').includes(`network lock: nftables amber-${redis.pid}`);
    if (point === 'dump:after-net-tcp' || point === 'dump:before-inventory') assert.ok(locked, `${point}: the lock had been taken`);
    assert.deepEqual(amberTables(a), [], `${point}: no table left`);
    await stillWorks(client, id);
  }
});

test('--leave-running unlocks after the dump; the connection goes on', async (t) => {
  const { hosts, a, redis, client, id } = await redisWithClient('lockleave');
  t.after(() => hosts.remove());
  const args = ['dump', '-t', String(redis.pid), '-D', makeTmpDir('lockleave'), '--tcp-established', '--leave-running'];
  const r = amber(args);
  assert.equal(r.status, 0, describeAmber(args, r));
  assert.deepEqual(amberTables(a), [], 'no table left');
  await stillWorks(client, id);
});

test('a restore failing before the sockets are live leaves no lock behind, and the images still restore the connection', async (t) => {
  const { hosts, a, redis, client, id } = await redisWithClient('lockrfault');
  t.after(() => hosts.remove());
  // quiet: nothing of the client's is in flight, so nothing retransmits into A while no lock is up
  await client.pause();
  const frozen = await client.stats();
  const dir = makeTmpDir('lockrfault');
  const d = amber(['dump', '-t', String(redis.pid), '-D', dir, '--tcp-established']);
  assert.equal(d.status, 0, describeAmber(['dump'], d));
  await reap(redis.pid).catch(() => undefined);
  assert.deepEqual(amberTables(a), [`inet amber-${redis.pid}`], 'the dump leaves its lock');
  const logDir = makeTmpDir('lockrfault-log');
  for (const point of RESTORE_POINTS) {
    const log = join(logDir, `${point.replace(/:/g, '-')}.log`);
    const args = ['restore', '-D', dir, '-d', '--tcp-established', '-v', '-o', log];
    const r = amberInHost(a, args, { env: { AMBER_FAULT: point }, timeoutMs: LIMIT_MS });
    assertInjected(args, r, point);
    await reap(redis.pid, 5_000).catch(() => undefined);
    if (!['restore:tree', 'restore:namespaces'].includes(point)) {
      assert.match(readFileSync(log, 'utf8'), new RegExp(`network lock: nftables amber-${redis.pid}`), `${point}: the restore had locked`);
    }
    assert.deepEqual(amberTables(a), [], `${point}: no table left`);
  }
  const r = amberInHost(a, ['restore', '-D', dir, '-d', '--tcp-established']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  assert.deepEqual(amberTables(a), []);
  client.resume();
  await stillWorks(client, id);
  assert.ok(Number((await client.stats()).lastValue) > Number(frozen.lastValue), 'the counter went on from where it was');
});

test('--network-lock iptables holds the connection with a chain from dump to restore; skip takes no lock', async (t) => {
  const { hosts, a, redis, client, id } = await redisWithClient('lockipt');
  t.after(() => hosts.remove());
  const chain = `amber-${redis.pid}`;
  const dir = makeTmpDir('lockipt');
  const d = amber(['dump', '-t', String(redis.pid), '-D', dir, '--tcp-established', '--network-lock', 'iptables']);
  assert.equal(d.status, 0, describeAmber(['dump'], d));
  await reap(redis.pid).catch(() => undefined);
  assert.deepEqual(amberTables(a), [], 'no nft table of amber\'s');
  assert.match(inHost(a, ['iptables', '-S', chain]).stdout, /-j DROP/, 'the chain drops the connection');
  const r = amberInHost(a, ['restore', '-D', dir, '-d', '--tcp-established', '--network-lock', 'iptables']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  assert.notEqual(inHost(a, ['iptables', '-S', chain]).status, 0, 'chain removed');
  assert.doesNotMatch(inHost(a, ['iptables', '-S']).stdout, /amber-/);
  await stillWorks(client, id);

  // skip: no lock at all (the client is quiet meanwhile: nothing of it crosses the gap)
  await client.pause();
  const dir2 = makeTmpDir('lockskip');
  const d2 = amber(['dump', '-t', String(redis.pid), '-D', dir2, '--tcp-established', '--network-lock', 'skip']);
  assert.equal(d2.status, 0, describeAmber(['dump'], d2));
  await reap(redis.pid).catch(() => undefined);
  assert.deepEqual(amberTables(a), []);
  assert.doesNotMatch(inHost(a, ['iptables', '-S']).stdout, /amber-/);
  const r2 = amberInHost(a, ['restore', '-D', dir2, '-d', '--tcp-established', '--network-lock', 'skip']);
  assert.equal(r2.status, 0, describeAmber(['restore'], r2));
  client.resume();
  await stillWorks(client, id);

  // a restore told another method still removes the dump's lock (the name is amber's own)
  await client.pause();
  const dir3 = makeTmpDir('lockother');
  const d3 = amber(['dump', '-t', String(redis.pid), '-D', dir3, '--tcp-established']);
  assert.equal(d3.status, 0, describeAmber(['dump'], d3));
  await reap(redis.pid).catch(() => undefined);
  assert.deepEqual(amberTables(a), [`inet amber-${redis.pid}`]);
  const r3 = amberInHost(a, ['restore', '-D', dir3, '-d', '--tcp-established', '--network-lock', 'skip']);
  assert.equal(r3.status, 0, describeAmber(['restore'], r3));
  assert.deepEqual(amberTables(a), [], 'the dump\'s table is gone');
  client.resume();
  await stillWorks(client, id);
});

test('a dump that finds a chain of its lock\'s name (another dump\'s) refuses in one line, leaves the chain, and the connection goes on', async (t) => {
  const { hosts, a, redis, client, id } = await redisWithClient('lockbusy');
  t.after(() => hosts.remove());
  const chain = `amber-${redis.pid}`;
  inHost(a, ['iptables', '-w', '-N', chain]);
  inHost(a, ['iptables', '-w', '-A', chain, '-p', 'udp', '--dport', '9', '-j', 'DROP']);
  const args = ['dump', '-t', String(redis.pid), '-D', makeTmpDir('lockbusy'), '--tcp-established', '--network-lock', 'iptables'];
  const r = amber(args);
  const how = describeAmber(args, r);
  assert.notEqual(r.status, 0, how);
  assert.equal(r.stderr.trim().split('\n').length, 1, how);
  assert.match(r.stderr, new RegExp(`chain ${chain} already exists .*iptables -X ${chain}`), how);
  assert.match(inHost(a, ['iptables', '-S', chain]).stdout, /--dport 9 -j DROP/, 'the other chain is left as it was');
  await stillWorks(client, id);
  inHost(a, ['iptables', '-w', '-F', chain]);
  inHost(a, ['iptables', '-w', '-X', chain]);
});

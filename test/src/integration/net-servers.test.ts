import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, amberInHost, cleanup, describeAmber, inHost, makeHostPair, makeTmpDir, nftTables, rateLimit, reap, removeAllHosts,
  sleep, startPeer, startTarget, stopPeers, until, WORKDIR, type Host, type Target,
} from '../harness';

// Real servers nobody here wrote, each started by the test as its own instance on host A, with
// their clients on host B: dumped with their connections and restored, the clients keep going.

after(async () => {
  stopPeers();
  await cleanup();
  removeAllHosts();
});

/** until() for an asynchronous condition (the peer answers over a pipe), polled every 50 ms. */
async function eventually(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

const amberTables = (h: Host) => nftTables(h).filter((t) => /amber-/.test(t));

async function listening(h: Host, port: number): Promise<void> {
  assert.ok(await until(() => inHost(h, ['ss', '-Htln', `sport = :${port}`]).stdout.trim() !== '', 10_000), `something listens on :${port} in ${h.netns}`);
}

/** Dumps target (amber runs in the root namespace), checks the lock holds meanwhile, restores it from inside A. */
interface Times {
  dumpS: number;
  restoreS: number;
  /** When the dump had returned and the restore began (the tree was gone between them). */
  dumped: number;
  restoring: number;
}

async function dumpAndRestore(target: Target, a: Host, during?: () => Promise<void>): Promise<Times> {
  const dir = makeTmpDir('net-server');
  const t0 = Date.now();
  const dargs = ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established'];
  const d = amber(dargs);
  const t1 = Date.now();
  assert.equal(d.status, 0, describeAmber(dargs, d));
  await reap(target.pid).catch(() => undefined);
  assert.deepEqual(amberTables(a), [`inet amber-${target.pid}`], 'between dump and restore the lock is in place');
  await during?.();
  const t2 = Date.now();
  const rargs = ['restore', '-D', dir, '-d', '--tcp-established'];
  const r = amberInHost(a, rargs, { timeoutMs: 60_000 });
  const t3 = Date.now();
  assert.equal(r.status, 0, describeAmber(rargs, r));
  assert.deepEqual(amberTables(a), [], 'the lock is gone once the tree runs');
  return { dumpS: (t1 - t0) / 1000, restoreS: (t3 - t2) / 1000, dumped: t1, restoring: t2 };
}

test('redis-server: a client on host B keeps its one connection (same CLIENT ID) and its counter through dump and restore', async (t) => {
  const hosts = makeHostPair('redis');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const script = 'echo READY $$; exec redis-server --bind "$2" --port 6379 --save "" --appendonly no --dir "$1" --protected-mode no';
  const redis = await startTarget('redis-server', ['-c', script, 'sh', WORKDIR, a.ipv4], { binary: '/bin/sh', netns: a.nsPath });
  await listening(a, 6379);
  const client = await startPeer(b, 'redis', a.ipv4, 6379);
  const id = await client.waitFor((e) => e.ev === 'connected').then((e) => String(e.clientId));
  assert.ok(await eventually(async () => (await client.stats()).answers >= 20, 10_000), 'the loop runs');

  let frozenAt = 0;
  // nothing slow in between: the client's pause is what amber takes (plus its TCP backoff)
  const times = await dumpAndRestore(redis, a, async () => {
    const s1 = await client.stats();
    assert.equal(s1.closed, null, 'no reset, no EOF while dumped');
    frozenAt = Number(s1.lastValue);
  });
  assert.ok(await eventually(async () => Number((await client.stats()).lastValue) > frozenAt + 20, 15_000), 'replies again after restore');
  const s = await client.stats();
  assert.equal(s.closed, null, JSON.stringify(s));
  assert.equal(await client.clientId(), id, 'the same connection (CLIENT ID)');
  // amber's times are its CLI's, node's start included; the client's pause runs from the freeze
  // to the first reply of the restored server
  t.diagnostic(`redis pause seen by the client: ${s.maxGapMs} ms (amber dump ${times.dumpS.toFixed(2)} s + restore ${times.restoreS.toFixed(2)} s, each with node's start)`);
  const gaps = client.events.filter((e) => e.ev === 'gap').map((e) => ({ from: Number(e.from), to: Number(e.to) }));
  assert.ok(gaps.some((g) => g.from <= times.dumped && g.to >= times.restoring), `no reply while the server was dumped: gaps ${JSON.stringify(gaps)}, dumped ${times.dumped}, restoring ${times.restoring}`);
});

test('nginx: a keep-alive client on host B gets answers on the same connection after restore', async (t) => {
  const hosts = makeHostPair('nginx');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const work = makeTmpDir('nginx');
  writeFileSync(join(work, 'index.html'), 'hello from nginx\n');
  const conf = [
    'daemon off;', 'master_process off;', `pid ${work}/nginx.pid;`, 'error_log stderr warn;', 'events { worker_connections 64; }',
    'http {', '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${work}/${k};`),
    '  keepalive_timeout 300s;', '  keepalive_requests 1000000;',
    `  server { listen ${a.ipv4}:8080; root ${work}; }`, '}',
  ].join('\n');
  writeFileSync(join(work, 'nginx.conf'), conf);
  const nginx = await startTarget('nginx', ['-c', 'echo READY $$; exec nginx -p "$1" -c "$1/nginx.conf" -e stderr', 'sh', WORKDIR], { binary: '/bin/sh', netns: a.nsPath, workdir: work });
  await listening(a, 8080);
  const client = await startPeer(b, 'http', a.ipv4, 8080);
  assert.ok(await eventually(async () => (await client.stats()).answers >= 20, 10_000), 'the loop runs');
  const before = await client.stats();
  assert.equal(before.lastValue, 'HTTP/1.1 200 OK');
  let frozen = 0;
  await dumpAndRestore(nginx, a, async () => {
    frozen = (await client.stats()).answers;
  });
  assert.ok(await eventually(async () => (await client.stats()).answers > frozen + 20, 15_000), 'answers again after restore');
  const s = await client.stats();
  assert.equal(s.closed, null, JSON.stringify(s));
  assert.equal(s.local, before.local, 'the same connection');
  assert.equal(s.lastValue, 'HTTP/1.1 200 OK');
});

// socat itself keeps a unix socketpair (its signal pipe), which waits for the unix plugin: the
// sender is OpenBSD nc, socat the receiver on host B.
test('nc: a long transfer to socat on host B dumped mid-way and restored arrives whole (checksum)', async (t) => {
  const hosts = makeHostPair('socat');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const work = makeTmpDir('socat');
  const size = 6 << 20;
  const data = randomBytes(size);
  writeFileSync(join(work, 'big'), data);
  const out = join(makeTmpDir('socat-out'), 'received');
  const receiver = spawn('ip', ['netns', 'exec', b.netns, 'socat', '-u', `TCP-LISTEN:9000,bind=${b.ipv4}`, `OPEN:${out},creat,trunc`], { stdio: 'ignore' });
  const received = new Promise<number | null>((resolve) => receiver.on('exit', (code) => resolve(code)));
  t.after(() => void receiver.kill('SIGKILL'));
  await listening(b, 9000);
  // a short tbf queue: what waits is in the sender's socket (dumped), not in the qdisc
  const unlimit = rateLimit(a, '12mbit', '32kb', '50ms');
  t.after(unlimit);
  const sender = await startTarget('nc-sender', ['-c', 'echo READY $$; exec nc -N "$2" 9000 <"$1/big"', 'sh', WORKDIR, b.ipv4], { binary: '/bin/sh', netns: a.nsPath, workdir: work });
  const got = () => (existsSync(out) ? statSync(out).size : 0);
  assert.ok(await until(() => got() > size / 5, 20_000), `transfer under way (${got()} bytes)`);
  let atDump = 0;
  await dumpAndRestore(sender, a, async () => {
    await sleep(200); // what had left the socket before the freeze may still cross
    atDump = got();
    await sleep(500);
    assert.equal(got(), atDump, 'nothing arrives while dumped');
  });
  assert.ok(atDump < size, `dumped mid-way (${atDump} of ${size})`);
  const code = await Promise.race([received, sleep(60_000).then(() => 'timeout')]);
  assert.equal(code, 0, `receiver exit ${code}, got ${got()} of ${size}`);
  const exit = await reap(sender.pid, 10_000);
  assert.equal(exit.code, 0, `restored nc: ${exit.text}`);
  const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');
  assert.equal(got(), size);
  assert.equal(sha(readFileSync(out)), sha(data), 'checksum of what arrived');
});

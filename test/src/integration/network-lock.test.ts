import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { after, test } from 'node:test';
import { kill, SIG } from '@amber/core';
import { NetworkLock, spawnRunner, type CommandRunner } from '@amber/plugin-net-tcp/dist/network-lock';
import {
  cleanup, inHost, inHostOk, makeHostPair, nftTables, parentOf, reap, removeAllHosts, sleep, startPeer, startTarget,
  stopPeers, until, WORKDIR, type Host, type Target,
} from '../harness';

// The network lock on a real connection between two test hosts, without a dump: what it does to
// the peer's packets, and that without it the same packets get a reset.

after(async () => {
  stopPeers();
  await cleanup();
  removeAllHosts();
});

const endpoint = (text: string) => {
  const i = text.lastIndexOf(':');
  return { address: text.slice(0, i), port: Number(text.slice(i + 1)) };
};

/** A receiver in A (socat, writing what it gets to a file) and a peer in B connected to it. */
async function connection(a: Host, b: Host, port: number, family: 4 | 6 = 4) {
  const [addr, listen] = family === 4 ? [a.ipv4, `TCP4-LISTEN:${port},bind=${a.ipv4}`] : [a.ipv6, `TCP6-LISTEN:${port},bind=[${a.ipv6}]`];
  const script = 'echo READY $$; exec socat -u "$2",reuseaddr OPEN:"$1/got",creat';
  const target = await startTarget('lock-receiver', ['-c', script, 'sh', WORKDIR, listen], { binary: '/bin/sh', netns: a.nsPath });
  assert.ok(await until(() => inHost(a, ['ss', '-Htln', `sport = :${port}`]).stdout.trim() !== '', 5_000), 'socat listens');
  const peer = await startPeer(b, 'stream', addr, port);
  const local = endpoint(String(peer.events.find((e) => e.ev === 'connected')!.local));
  return { target, peer, conn: { local: { address: addr, port }, remote: local } };
}

async function killOurs(target: Target): Promise<void> {
  assert.equal(parentOf(target.pid), process.pid, `pid ${target.pid} is still ours`);
  kill(target.pid, SIG.KILL);
  await reap(target.pid);
}

const got = (t: Target) => (existsSync(`${t.workdir}/got`) ? statSync(`${t.workdir}/got`).size : 0);

test('locked, the peer\'s packets are dropped and it sees no reset even once the socket is gone; unlocked, it hears at once', async (t) => {
  const hosts = makeHostPair('lock');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const { target, peer, conn } = await connection(a, b, 7200);
  await peer.send(1000);
  assert.ok(await until(() => got(target) === 1000, 5_000), `receiver got ${got(target)} of 1000 bytes`);

  const lock = new NetworkLock({ rootPid: target.pid, nsPid: target.pid });
  lock.lock([conn]);
  t.after(() => { if (existsSync(a.nsPath)) lock.unlock(); });
  assert.equal(lock.method, 'nftables');
  const table = inHostOk(a, ['nft', 'list', 'table', 'inet', `amber-${target.pid}`]);
  assert.match(table, new RegExp(`${a.ipv4.replace(/\./g, '\\.')} \\. ${conn.local.port} \\. ${b.ipv4.replace(/\./g, '\\.')} \\. ${conn.remote.port}`), table);
  assert.deepEqual(nftTables(b), [], 'nothing in B');

  await peer.send(500);
  await sleep(500);
  assert.equal(got(target), 1000, 'locked: nothing more reaches the receiver');
  await killOurs(target); // its socket closes: the FIN is dropped too
  await peer.send(2000);
  await sleep(1500);
  let s = await peer.stats();
  assert.equal(s.closed, null, `locked: the peer sees neither EOF nor a reset (${JSON.stringify(s)})`);
  assert.match(inHostOk(b, ['ss', '-Htn', 'state', 'established', `dport = :${conn.local.port}`]), new RegExp(`:${conn.remote.port}\\b`), 'peer still ESTABLISHED');

  lock.unlock();
  assert.deepEqual(nftTables(a), [], 'unlock leaves no table');
  // the orphaned socket's FIN and the peer's next retransmission pass now: the peer learns the
  // connection is gone (EOF or reset, whichever crosses first) — what the lock was holding off
  await peer.waitFor((e) => e.ev === 'error' || e.ev === 'end', 15_000, 'EOF or reset after unlock');
  s = await peer.stats();
  assert.match(String(s.closed), /^(ECONNRESET|EOF|EPIPE)$/, JSON.stringify(s));
});

test('the iptables lock holds the peer off the same way and removes its chain', async (t) => {
  const hosts = makeHostPair('lock');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const { target, peer, conn } = await connection(a, b, 7201);
  const lock = new NetworkLock({ rootPid: target.pid, nsPid: target.pid, method: 'iptables' });
  lock.lock([conn]);
  t.after(() => { if (existsSync(a.nsPath)) lock.unlock(); });
  assert.match(inHostOk(a, ['iptables', '-S', `amber-${target.pid}`]), /-j DROP/);
  // a restore takes the chain over: before each command it runs, the connection is still dropped
  // both ways (a gap lets a retransmission meet no socket, and the peer gets a reset)
  const drops = () => (inHost(a, ['iptables', '-S', `amber-${target.pid}`]).stdout.match(/ -j DROP$/gm) ?? []).length;
  const gaps: string[] = [];
  const watched: CommandRunner = (argv, input) => {
    if (drops() !== 2) gaps.push(argv.slice(2).join(' '));
    return spawnRunner(argv, input);
  };
  const again = new NetworkLock({ rootPid: target.pid, nsPid: target.pid, method: 'iptables', run: watched });
  again.lock([conn], true);
  assert.deepEqual(gaps, [], 'no command ran while the connection was open');
  assert.equal(drops(), 2);
  for (const hook of ['INPUT', 'OUTPUT']) {
    assert.equal(inHostOk(a, ['iptables', '-S', hook]).split('\n').filter((l) => l.endsWith(`-j amber-${target.pid}`)).length, 1, `one jump from ${hook}`);
  }
  assert.throws(() => new NetworkLock({ rootPid: target.pid, nsPid: target.pid, method: 'iptables' }).lock([conn]), /already exists/);
  assert.equal(drops(), 2, 'a refused lock leaves the chain');
  await killOurs(target);
  await peer.send(2000);
  await sleep(1500);
  assert.equal((await peer.stats()).closed, null, 'locked: no reset');
  lock.unlock();
  assert.notEqual(inHost(a, ['iptables', '-S', `amber-${target.pid}`]).status, 0, 'chain removed');
  assert.doesNotMatch(inHostOk(a, ['iptables', '-S']), /amber-/);
  await peer.waitFor((e) => e.ev === 'error' || e.ev === 'end', 15_000, 'EOF or reset after unlock');
});

test('an IPv6 connection is locked the same way (its own set)', async (t) => {
  const hosts = makeHostPair('lock');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const { target, peer, conn } = await connection(a, b, 7202, 6);
  assert.equal(conn.remote.address, b.ipv6);
  const lock = new NetworkLock({ rootPid: target.pid, nsPid: target.pid });
  lock.lock([conn]);
  t.after(() => { if (existsSync(a.nsPath)) lock.unlock(); });
  assert.match(inHostOk(a, ['nft', 'list', 'set', 'inet', `amber-${target.pid}`, 'conns6']), new RegExp(`${conn.remote.port}`));
  await killOurs(target);
  await peer.send(2000);
  await sleep(1500);
  assert.equal((await peer.stats()).closed, null, 'locked: no reset');
  lock.unlock();
  await peer.waitFor((e) => e.ev === 'error' || e.ev === 'end', 15_000, 'EOF or reset after unlock');
});

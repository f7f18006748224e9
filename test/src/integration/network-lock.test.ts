import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { after, test } from 'node:test';
import { kill, SIG } from '@amber/core';
import { NetworkLock } from '@amber/plugin-net-tcp/dist/network-lock';
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
async function connection(a: Host, b: Host, port: number) {
  const script = 'echo READY $$; exec socat -u TCP-LISTEN:"$2",bind="$3",reuseaddr OPEN:"$1/got",creat';
  const target = await startTarget('lock-receiver', ['-c', script, 'sh', WORKDIR, String(port), a.ipv4], { binary: '/bin/sh', netns: a.nsPath });
  assert.ok(await until(() => inHost(a, ['ss', '-Htln', `sport = :${port}`]).stdout.trim() !== '', 5_000), 'socat listens');
  const peer = await startPeer(b, 'stream', a.ipv4, port);
  const local = endpoint(String(peer.events.find((e) => e.ev === 'connected')!.local));
  return { target, peer, conn: { local: { address: a.ipv4, port }, remote: local } };
}

async function killOurs(target: Target): Promise<void> {
  assert.equal(parentOf(target.pid), process.pid, `pid ${target.pid} is still ours`);
  kill(target.pid, SIG.KILL);
  await reap(target.pid);
}

const got = (t: Target) => (existsSync(`${t.workdir}/got`) ? statSync(`${t.workdir}/got`).size : 0);

test('locked, the peer\'s packets are dropped and it sees no reset even once the socket is gone; unlocked, the reset comes', async (t) => {
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
  await killOurs(target);
  await peer.send(2000);
  await sleep(1500);
  assert.equal((await peer.stats()).closed, null, 'locked: no reset');
  lock.unlock();
  assert.notEqual(inHost(a, ['iptables', '-S', `amber-${target.pid}`]).status, 0, 'chain removed');
  assert.doesNotMatch(inHostOk(a, ['iptables', '-S']), /amber-/);
  await peer.waitFor((e) => e.ev === 'error' || e.ev === 'end', 15_000, 'EOF or reset after unlock');
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readlinkSync, statSync } from 'node:fs';
import { after, test } from 'node:test';
import {
  canPing, cleanup, dropRule, inHostOk, makeHostPair, netnsExists, nftTables, rateLimit, reap, removeAllHosts,
  startTarget, WORKDIR,
} from '../harness';

// The network test hosts themselves: no checkpointing here.

after(async () => {
  await cleanup();
  removeAllHosts();
});

const rootLinks = (): string => spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;

test('two hosts reach each other over their veth pair, and are gone after remove()', async (t) => {
  const before = rootLinks();
  const hosts = makeHostPair('harness');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  assert.ok(netnsExists(a.netns) && netnsExists(b.netns));
  assert.ok(canPing(a, b.ipv4), `${a.netns} -> ${b.ipv4}`);
  assert.ok(canPing(b, a.ipv4), `${b.netns} -> ${a.ipv4}`);
  assert.ok(canPing(a, b.ipv6), `${a.netns} -> ${b.ipv6}`);
  assert.ok(canPing(a, '127.0.0.1'), 'loopback up in A');
  assert.match(inHostOk(a, ['ip', '-o', 'addr', 'show', 'dev', a.dev]), new RegExp(`inet ${a.ipv4.replace(/\./g, '\\.')}/24`));
  // the root namespace never sees the pair, nor its addresses
  assert.equal(rootLinks(), before, 'root namespace links unchanged');
  hosts.remove();
  assert.ok(!netnsExists(a.netns) && !netnsExists(b.netns), 'namespaces removed');
  hosts.remove(); // idempotent
});

test('a target started in host A lives in its network namespace and is reachable from B', async (t) => {
  const hosts = makeHostPair('harness');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const script = 'echo READY $$; exec socat -u TCP-LISTEN:7001,bind="$2" OPEN:"$1/got",creat';
  const target = await startTarget('in-netns', ['-c', script, 'sh', WORKDIR, a.ipv4], { binary: '/bin/sh', netns: a.nsPath });
  assert.equal(readlinkSync(`/proc/${target.pid}/ns/net`), `net:[${statSync(a.nsPath).ino}]`);
  assert.notEqual(readlinkSync(`/proc/${target.pid}/ns/net`), readlinkSync('/proc/self/ns/net'));
  // the mount namespace is ours: only the network namespace changed
  assert.equal(readlinkSync(`/proc/${target.pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'));
  let listening = false;
  for (let i = 0; i < 100 && !listening; i++) {
    listening = inHostOk(a, ['ss', '-Htln', 'sport', '= :7001']).trim() !== '';
    if (!listening) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(listening, 'socat listens in A');
  inHostOk(b, ['socat', '-u', 'STDIN', `TCP:${a.ipv4}:7001`], 'hello from B\n');
  // socat exits by itself at the end of the transfer
  const exit = await reap(target.pid, 10_000);
  assert.equal(exit.code, 0, exit.text);
  assert.equal(spawnSync('cat', [`${target.workdir}/got`], { encoding: 'utf8' }).stdout, 'hello from B\n');
});

test('tc tbf limits one end, and an nft drop rule of the test\'s own cuts B off until removed', async (t) => {
  const hosts = makeHostPair('harness');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const unlimit = rateLimit(a, '1mbit');
  assert.match(inHostOk(a, ['tc', 'qdisc', 'show', 'dev', a.dev]), /qdisc tbf .*rate 1Mbit/);
  unlimit();
  assert.doesNotMatch(inHostOk(a, ['tc', 'qdisc', 'show', 'dev', a.dev]), /tbf/);

  const rule = dropRule(b, `ip saddr ${a.ipv4}`);
  assert.deepEqual(nftTables(b), [`inet ${rule.table}`]);
  assert.deepEqual(nftTables(a), [], 'A has no table');
  assert.ok(!canPing(a, b.ipv4), 'B drops what A sends');
  assert.ok(canPing(a, b.ipv6), 'only IPv4 from A is dropped');
  rule.remove();
  assert.deepEqual(nftTables(b), []);
  assert.ok(canPing(a, b.ipv4), 'reachable again');
});

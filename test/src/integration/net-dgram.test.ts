import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, amberOk, assertOneLineError, cleanup, cliEntry, critDecode, describeAmber, isAlive, inHostOk, makeHostPair, makeTmpDir, reap, removeAllHosts,
  procState, sleep, startTarget, verdict, type AmberResult, type Host, type Target,
} from '../harness';

// Netlink, packet, UDP and ping sockets of a target living in a network namespace the test
// made. amber dumps from its own namespace (its sock_diag questions are asked in the target's);
// a restore puts the tree in the restoring process's namespace, so it runs inside host A.

after(async () => {
  await cleanup();
  removeAllHosts();
});

const restoreArgs = (dir: string) => ['restore', '-D', dir, '-d'];

/** amber restore inside host's network namespace (only that one: nsenter --net). */
function tryRestoreIn(host: Host, dir: string): AmberResult {
  const r = spawnSync('nsenter', [`--net=${host.nsPath}`, process.execPath, cliEntry, ...restoreArgs(dir)], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function restoreIn(host: Host, dir: string): AmberResult {
  const res = tryRestoreIn(host, dir);
  assert.equal(res.status, 0, describeAmber(restoreArgs(dir), res));
  return res;
}

const netnsOf = (pid: number | 'self') => readlinkSync(`/proc/${pid}/ns/net`);

async function startIn(host: Host, peer: Host, parts: string): Promise<Target> {
  return startTarget('net_dgram', [parts, host.dev, peer.ipv4, peer.ipv6], { netns: host.nsPath });
}

interface FileEntryJson { type: string; id: number; nlsk?: Record<string, unknown>; psk?: Record<string, unknown> }

function filesOf(dir: string): FileEntryJson[] {
  return critDecode(join(dir, 'files.img')).entries as unknown as FileEntryJson[];
}

test('netlink sockets (route with groups above 32, bound to a chosen port, unbound, generic, uevent, sock_diag, audit) come back with their port ids and groups, and the route socket still hears of a new address', async (t) => {
  const hosts = makeHostPair('nl');
  t.after(() => hosts.remove());
  const target = await startIn(hosts.a, hosts.b, 'n');
  const ns = netnsOf(target.pid);
  assert.notEqual(ns, netnsOf('self'));
  const dir = makeTmpDir('net-dgram-nl');
  const dump = amberOk(['dump', '-t', String(target.pid), '-D', dir]);
  assert.doesNotMatch(dump.stderr, /queued to read/, 'nothing was queued, nothing dropped');
  assert.equal((await reap(target.pid)).signal, 9);

  // crit reads the members as CRIU's: protocol, port id, groups bitmap
  const files = filesOf(dir).filter((f) => f.type === 'NETLINKSK');
  assert.equal(files.length, 7, JSON.stringify(files));
  const ports = target.readyLines.filter((l) => l.startsWith('NL ')).map((l) => Number(/port (\d+)/.exec(l)![1]));
  const dumped = files.map((f) => Number(f.nlsk!.portid));
  for (const p of ports) assert.ok(dumped.includes(p), `port ${p} in files.img: ${dumped.join(',')}`);
  assert.ok(dumped.includes(0), 'the unbound socket is there, with port id 0');
  const route = files.find((f) => f.nlsk!.portid === ports[0])!;
  assert.equal(route.nlsk!.protocol, 0);
  // groups 1, 5, 8 in the first word, 33 in the second
  assert.deepEqual(route.nlsk!.groups, [(1 << 0) | (1 << 4) | (1 << 7), 1]);
  const uevent = files.find((f) => f.nlsk!.protocol === 15)!;
  assert.deepEqual(uevent.nlsk!.groups, [1]);

  restoreIn(hosts.a, dir);
  assert.ok(isAlive(target.pid));
  assert.equal(netnsOf(target.pid), ns, 'back in its namespace');
  amberOk(['compare', '-t', String(target.pid), '-D', dir]);
  const v = await verdict(target);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a netlink message queued at dump is not restored: the dump says so, and compare reports the queue', async (t) => {
  const hosts = makeHostPair('nlq');
  t.after(() => hosts.remove());
  const target = await startIn(hosts.a, hosts.b, 'n');
  // an address added behind the target's back: its route socket (group 5) has a notification queued
  inHostOk(hosts.a, ['ip', 'addr', 'add', '10.98.0.1/32', 'dev', 'lo']);
  const dir = makeTmpDir('net-dgram-nlq');
  const dump = amberOk(['dump', '-t', String(target.pid), '-D', dir]);
  const port = Number(/NL route port (\d+)/.exec(target.readyLines.join('\n'))![1]);
  const warned = new RegExp(`NETLINK_ROUTE port ${port} groups 1,5,8,33 has (\\d+) bytes of messages queued to read; they are not restored`).exec(dump.stderr);
  assert.ok(warned, dump.stderr);
  await reap(target.pid);
  restoreIn(hosts.a, dir);
  const cmp = amber(['compare', '-t', String(target.pid), '-D', dir]);
  assert.equal(cmp.status, 1, describeAmber(['compare'], cmp));
  const diffs = cmp.stdout.split('\n').filter((l) => /^\s+fd \d+ /.test(l));
  assert.deepEqual(diffs.map((l) => l.replace(/^\s+fd \d+ /, '')), [`bytes queued: expected ${warned[1]}, found 0`], cmp.stdout);
  const v = await verdict(target);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a netlink port id another socket holds at restore: the restore refuses in one line naming it, and leaves nothing', async (t) => {
  const hosts = makeHostPair('nlbusy');
  t.after(() => hosts.remove());
  const target = await startIn(hosts.a, hosts.b, 'n');
  const dir = makeTmpDir('net-dgram-nlbusy');
  amberOk(['dump', '-t', String(target.pid), '-D', dir]);
  await reap(target.pid);
  const script = 'import os, signal, socket\ns = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)\ns.bind((0x7abc1234, 0))\nprint("READY", os.getpid(), flush=True)\nsignal.pause()\n';
  const squatter = await startTarget('netlink-squatter', ['-c', script], { binary: '/usr/bin/python3', netns: hosts.a.nsPath });
  t.after(() => cleanup());
  assertOneLineError(restoreArgs(dir), tryRestoreIn(hosts.a, dir), new RegExp(`NETLINK_ROUTE port ${0x7abc1234}: port id ${0x7abc1234} is taken in this network namespace`));
  assert.ok(!isAlive(target.pid), 'no restored process is left');
  assert.ok(isAlive(squatter.pid), 'the squatter is untouched');
});

test('packet sockets (bound to the veth with version, aux data, promiscuous membership and fanout; unbound dgram) come back and still capture', async (t) => {
  const hosts = makeHostPair('pk');
  t.after(() => hosts.remove());
  const target = await startIn(hosts.a, hosts.b, 'p');
  const ifindex = Number(/PK raw ifindex (\d+)/.exec(target.readyLines.join('\n'))![1]);
  const dir = makeTmpDir('net-dgram-pk');
  amberOk(['dump', '-t', String(target.pid), '-D', dir]);
  await reap(target.pid);
  const files = filesOf(dir).filter((f) => f.type === 'PACKETSK');
  assert.equal(files.length, 2, JSON.stringify(files));
  const raw = files.find((f) => f.psk!.type === 3)!.psk!;
  assert.equal(raw.ifindex, ifindex);
  assert.equal(raw.version, 1, 'TPACKET_V2');
  assert.equal(raw.aux_data, true);
  assert.equal(raw.orig_dev, true);
  assert.equal(raw.fanout, 77 | (0 << 16));
  assert.equal((raw.mclist as { index: number; type: number }[])[0].type, 1, 'PACKET_MR_PROMISC');
  restoreIn(hosts.a, dir);
  amberOk(['compare', '-t', String(target.pid), '-D', dir]);
  const v = await verdict(target);
  assert.ok(v.passed, v.lines.join(' | '));
});

/** The Recv-Q ss shows for UDP port `port` in host (a number of bytes of memory, not of data). */
function udpRecvQ(host: Host, port: number): number {
  const line = inHostOk(host, ['ss', '-Hunl', `sport = :${port}`]).trim().split('\n')[0] ?? '';
  return Number(line.split(/\s+/)[1] ?? 0);
}

test('UDP and UDP-lite sockets (bound, connected, IPv4 and IPv6, a multicast member, unbound) come back with every queued datagram, byte for byte, from the same sender', async (t) => {
  const hosts = makeHostPair('udp');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const target = await startIn(a, b, 'u');
  // one more datagram for *:7105, from the other host: its sender is not an address of host A
  const before = udpRecvQ(a, 7105);
  inHostOk(b, ['socat', '-u', 'STDIN', `UDP4-SENDTO:${a.ipv4}:7105,sourceport=7200`], 'from-b\n');
  for (let i = 0; i < 100 && udpRecvQ(a, 7105) === before; i++) await sleep(10);
  assert.ok(udpRecvQ(a, 7105) > before, 'the datagram from B is queued');
  const dir = makeTmpDir('net-dgram-udp');
  amberOk(['dump', '-t', String(target.pid), '-D', dir]);
  await reap(target.pid);
  const isk = filesOf(dir).filter((f) => f.type === 'INETSK');
  assert.equal(isk.length, 8, JSON.stringify(isk));
  // crit reads the queue as CRIU's sk-queues: 3 + 2 + 2 + 1 + 2 + 1 datagrams, 20000 bytes among them
  const queues = critDecode(join(dir, 'sk-queues.img')).entries as unknown as { id_for: number; length: number }[];
  assert.equal(queues.length, 11, JSON.stringify(queues));
  assert.ok(queues.some((q) => q.length === 20000) && queues.some((q) => q.length === 0));
  restoreIn(a, dir);
  amberOk(['compare', '-t', String(target.pid), '-D', dir]);
  // and once more, from the restored sockets
  const again = makeTmpDir('net-dgram-udp-2');
  amberOk(['dump', '-t', String(target.pid), '-D', again]);
  await reap(target.pid);
  restoreIn(a, again);
  amberOk(['compare', '-t', String(target.pid), '-D', again]);
  // a multicast datagram, after the restore, from B: the membership on the veth is back
  inHostOk(b, ['socat', '-u', 'STDIN', `UDP4-SENDTO:239.1.2.3:7105,ip-multicast-if=${b.ipv4}`], 'mcast-after\n');
  const v = await verdict(target);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a --leave-running dump reads the UDP queues without consuming them: the target still gets every datagram', async (t) => {
  const hosts = makeHostPair('udplr');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  const target = await startIn(a, b, 'u');
  const before = udpRecvQ(a, 7105);
  inHostOk(b, ['socat', '-u', 'STDIN', `UDP4-SENDTO:${a.ipv4}:7105,sourceport=7200`], 'from-b\n');
  for (let i = 0; i < 100 && udpRecvQ(a, 7105) === before; i++) await sleep(10);
  const dir = makeTmpDir('net-dgram-udp-lr');
  amberOk(['dump', '-t', String(target.pid), '-D', dir, '--leave-running']);
  amberOk(['compare', '-t', String(target.pid), '-D', dir]);
  inHostOk(b, ['socat', '-u', 'STDIN', `UDP4-SENDTO:239.1.2.3:7105,ip-multicast-if=${b.ipv4}`], 'mcast-after\n');
  const v = await verdict(target);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('ICMP ping sockets (an identifier, a peer; IPv6) and raw sockets (ICMP and ICMPv6 with filters, IPPROTO_RAW) come back and still ping', async (t) => {
  const hosts = makeHostPair('ping');
  t.after(() => hosts.remove());
  const { a, b } = hosts;
  // ping sockets for every group, in host A's namespace only
  inHostOk(a, ['sh', '-c', 'echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range']);
  const target = await startIn(a, b, 'i');
  const dir = makeTmpDir('net-dgram-ping');
  amberOk(['dump', '-t', String(target.pid), '-D', dir]);
  await reap(target.pid);
  const isk = filesOf(dir).filter((f) => f.type === 'INETSK').map((f) => (f as unknown as { isk: { type: number; proto: number } }).isk);
  assert.deepEqual(isk.map((e) => `${e.type}/${e.proto}`).sort(), ['2/1', '2/58', '3/1', '3/255', '3/58']);
  // amber makes the ping socket itself: only for a task whose group the namespace lets ping now
  const setRange = (range: string) => inHostOk(a, ['sh', '-c', `echo "${range}" > /proc/sys/net/ipv4/ping_group_range`]);
  setRange('1 0');
  assertOneLineError(restoreArgs(dir), tryRestoreIn(a, dir), /ping socket .* needs group 0 in net\.ipv4\.ping_group_range of its network namespace, which is 1 0 now/);
  assert.ok(!isAlive(target.pid), 'nothing restored');
  // the task the refused restore had begun is gone; its zombie comes to us (the subreaper)
  if (procState(target.pid) !== null) await reap(target.pid);
  setRange('0 2147483647');
  restoreIn(a, dir);
  amberOk(['compare', '-t', String(target.pid), '-D', dir]);
  const v = await verdict(target);
  assert.ok(v.passed, v.lines.join(' | '));
});

for (const [parts, how, refusal] of [
  ['r', 'set up', /packet SOCK_RAW socket \(protocol 0x0003, every interface\) has a PACKET_RX_RING \(8 frames of 2048 bytes in 4 blocks\) \(a ring shared with the process\), which amber does not restore/],
  // mapped, the ring is a shared mapping of the socket: the memory plugin refuses it first
  ['R', 'set up and mapped', /mapping 0x[0-9a-f]+-0x[0-9a-f]+ is shared memory \(socket:\[\d+\]\), which amber cannot dump yet/],
] as const) {
  test(`a packet socket with a PACKET_RX_RING ${how}: the dump refuses in one line, and the target keeps running untouched`, async (t) => {
    const hosts = makeHostPair('ring');
    t.after(() => hosts.remove());
    const target = await startIn(hosts.a, hosts.b, parts);
    const dir = makeTmpDir('net-dgram-ring');
    const args = ['dump', '-t', String(target.pid), '-D', dir];
    assertOneLineError(args, amber(args), refusal);
    assert.ok(isAlive(target.pid));
    const v = await verdict(target);
    assert.ok(v.passed, v.lines.join(' | '));
  });
}

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AF, IPPROTO, inetSocketList, inNetnsOf } from '@amber/core';
import {
  amberInHost, assertOneLineError, cleanup, critDecode, descendants, describeAmber, dropRule, nftTables, isAlive, makeHostPair, procState, makeTmpDir, rateLimit, reap,
  removeAllHosts, startTarget, targetPath, verdict, type AmberResult, type Host,
} from '../harness';
import { startFinPeer, startStreamPeer as startPeer } from '../harness/tcp-peers';

after(async () => {
  await cleanup();
  removeAllHosts();
});

/** amber run inside host's network namespace (only the network namespace: nsenter --net): a restored task lives where amber does. */
function amberIn(host: Host, args: string[], env: NodeJS.ProcessEnv = {}): AmberResult & { seconds: number } {
  const t0 = performance.now();
  const r = amberInHost(host, args, { env, timeoutMs: 60_000 });
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

function amberInOk(host: Host, args: string[]): AmberResult & { seconds: number } {
  const r = amberIn(host, args);
  assert.equal(r.status, 0, describeAmber(args, r));
  return r;
}

const OUT_BYTES = 200 * 1024;
const IN_BYTES = 5 * 1024;

/** host's TCP connections on its local port `port`, as `ss -tni` shows them (state, unacked, retrans). */
function ssLine(host: Host, port: number): string {
  const r = spawnSync('ip', ['netns', 'exec', host.netns, 'ss', '-tniH', 'state', 'all', `( sport = :${port} )`], { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout ?? '').replace(/\s+/g, ' ').trim();
}

const retransmitted = (ssText: string) => Number(/bytes_retrans:(\d+)/.exec(ssText)?.[1] ?? 0);

/**
 * A tcp_conn target on host A with its two connections to a peer on host B, the second one the
 * peer's stream, dumped with lockArgs; returns once the peer has retransmitted on the stream into
 * whatever holds its packets (or its connection ended), before any restore.
 */
async function dumpedWithStream(t: { after(fn: () => void): void }, family: 'ipv4' | 'ipv6', port: number, streamPort: number, lockArgs: string[]) {
  const pair = makeHostPair('tcp');
  t.after(() => pair.remove());
  const { a, b } = pair;
  // host A sends slowly: the target's 200 KiB stay in its send queue and in flight
  const unlimit = rateLimit(a, '256kbit', '16kb', '5s');
  const peer = startPeer(b, port, OUT_BYTES, IN_BYTES, streamPort);
  t.after(() => { peer.child.kill('SIGKILL'); });
  await peer.waitFor('listening');
  await peer.waitFor('stream listening');
  const target = await startTarget('tcp_conn', [b[family], String(port), String(streamPort)], { netns: a.nsPath, timeoutMs: 30_000 });
  await peer.waitFor('accepted');
  await peer.waitFor('stream accepted');

  const dir = makeTmpDir(`tcp-${family}`);
  const dump = amberInOk(a, ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established', ...lockArgs]);
  const exit = await reap(target.pid);
  assert.equal(exit.signal, 9, exit.text);
  // The target is gone, its sockets with it; the peer goes on writing the stream. Host A's rate
  // limit goes now: a reset A would send must not wait in (and vanish with) its queue. The peer
  // has filled its window and waits for acknowledgements: wait until it retransmits.
  const dumped = ssLine(b, streamPort);
  unlimit();
  let locked = dumped;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline && /^ESTAB /.test(locked) && retransmitted(locked) <= retransmitted(dumped);) {
    await new Promise((r) => setTimeout(r, 100));
    locked = ssLine(b, streamPort);
  }
  return { a, b, peer, target, dir, dump, dumped, locked, lockTables: nftTables(a) };
}

for (const family of ['ipv4', 'ipv6'] as const) {
  test(`an established ${family} connection to a peer on another host survives dump and restore: every byte both ways, in order, then a round trip; the peer sees no reset or EOF; a second connection the peer writes on all along loses no byte`, async (t) => {
    const port = 7100 + (family === 'ipv4' ? 0 : 1);
    const streamPort = 7200 + (family === 'ipv4' ? 0 : 1);
    const { a, peer, target, dir, dump, dumped, locked, lockTables } = await dumpedWithStream(t, family, port, streamPort, []);

    const files = critDecode(join(dir, 'files.img')).entries;
    const isk = files.find((f) => f.type === 'INETSK' && (f.isk as { dst_port: number }).dst_port === port)?.isk as { ino: number; state: number; dst_port: number } | undefined;
    assert.ok(isk, `files.img has the inet socket to port ${port}: ${JSON.stringify(files)}`);
    assert.equal(isk.state, 1, 'ESTABLISHED');
    const stream = critDecode(join(dir, `tcp-stream-${isk.ino.toString(16)}.img`)).entries[0] as { inq_len: number; outq_len: number; extra: { inq: string; outq: string } };
    assert.equal(stream.inq_len, IN_BYTES, "the peer's bytes, unread, in the receive queue");
    assert.ok(stream.outq_len > 0, `some of the 200 KiB still unacknowledged at dump time (outq ${stream.outq_len})`);
    assert.equal(Buffer.from(stream.extra.outq, 'base64').length, stream.outq_len);
    assert.ok(files.some((f) => f.type === 'INETSK' && (f.isk as { dst_port: number; state: number }).dst_port === streamPort), 'the stream connection is dumped too');

    const restore = amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
    assert.ok(isAlive(target.pid), `pid ${target.pid} is back`);
    // the network lock (nftables, the default) held host B's packets off between the two commands
    assert.deepEqual(nftTables(a), [], 'no lock left in host A after the restore');
    peer.child.stdin!.write('read\n');
    const v = await verdict(target, 60_000);
    assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}; peer: ${peer.lines.join(' | ')}`);
    await peer.waitFor('pong');
    const main = peer.lines.filter((l) => !l.startsWith('stream '));
    const before = main.slice(0, main.indexOf('pong') + 1);
    assert.deepEqual(before, ['listening', 'accepted', `verified ${OUT_BYTES}`, 'ping', 'pong'], `peer's events: ${peer.lines.join(' | ')}`);

    // the stream: every byte the peer wrote was read, in order (the target checked each), and the
    // peer's end saw neither reset nor EOF before it closed it itself
    await peer.waitFor(/^stream sent \d+$/);
    const sent = Number(peer.lines.find((l) => l.startsWith('stream sent '))!.split(' ')[2]);
    const read = Number(v.lines.find((l) => l.startsWith('STREAM '))?.split(' ')[1]);
    assert.equal(read, sent, `the target read every byte the peer wrote on the stream (target ${v.lines.join(' | ')})`);
    const streamEvents = peer.lines.filter((l) => l.startsWith('stream ') && l !== 'stream end');
    assert.deepEqual(streamEvents, ['stream listening', 'stream accepted', 'stream stop', `stream sent ${sent}`], `peer's stream events: ${peer.lines.join(' | ')}`);
    assert.match(locked, /^ESTAB .*unacked:\d+/, `while the tree was dumped the peer's stream connection was open, its bytes unacknowledged: ${locked}`);
    assert.ok(retransmitted(locked) > retransmitted(dumped), `the peer retransmitted into the lock (bytes_retrans ${retransmitted(dumped)} -> ${retransmitted(locked)})`);
    assert.deepEqual(lockTables, [`inet amber-${target.pid}`], 'the lock held them off');
    const field = (name: string) => new RegExp(`\\b${name}:(\\S+)`).exec(locked)?.[1] ?? '-';
    t.diagnostic(`stream: ${sent} bytes; peer's socket in the lock: unacked ${field('unacked')}, retrans ${field('retrans')}, backoff ${field('backoff')}, rto ${field('rto')} ms`);
    t.diagnostic(`pause (dump + restore commands, outq ${stream.outq_len} bytes): ${(dump.seconds + restore.seconds).toFixed(2)} s (dump ${dump.seconds.toFixed(2)} s, restore ${restore.seconds.toFixed(2)} s)`);
  });
}

test('without the network lock (--network-lock skip) host A answers the peer\'s retransmission with a reset: the stream check sees it', async (t) => {
  const { a, peer, target, dir, locked, lockTables } = await dumpedWithStream(t, 'ipv4', 7102, 7202, ['--network-lock', 'skip']);
  assert.deepEqual(lockTables, [], 'no lock');
  assert.doesNotMatch(locked, /^ESTAB /, `the peer's stream connection was reset while the tree was dumped: ${locked}`);
  amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
  const v = await verdict(target, 60_000);
  assert.ok(!v.passed && v.lines.some((l) => /^FAIL: stream: read after \d+ bytes: Connection reset by peer$/.test(l)), `the target saw the reset: ${v.lines.join(' | ')}`);
  assert.ok(peer.lines.includes('stream error ECONNRESET'), `the peer saw it: ${peer.lines.join(' | ')}`);
});

test('an established connection without --tcp-established is refused with one line naming it and the flag; the target goes on', async (t) => {
  const pair = makeHostPair('tcpno');
  t.after(() => pair.remove());
  const { a, b } = pair;
  const port = 7110;
  const peer = startPeer(b, port, OUT_BYTES, IN_BYTES);
  t.after(() => { peer.child.kill('SIGKILL'); });
  await peer.waitFor('listening');
  const target = await startTarget('tcp_conn', [b.ipv4, String(port)], { netns: a.nsPath, timeoutMs: 30_000 });
  const dir = makeTmpDir('tcp-refused');
  const args = ['dump', '-t', String(target.pid), '-D', dir];
  assertOneLineError(args, amberIn(a, args), new RegExp(`fd \\d+ of pid ${target.pid} is a TCP connection ${a.ipv4.replace(/\./g, '\\.')}:\\d+ -> ${b.ipv4.replace(/\./g, '\\.')}:${port} \\(ESTABLISHED\\); dumping it needs --tcp-established`));
  assert.ok(isAlive(target.pid), 'the target keeps running');
  peer.child.stdin!.write('read\n');
  const v = await verdict(target, 30_000);
  assert.ok(v.passed, `target's own checks after the refused dump: ${v.lines.join(' | ')}`);
  await peer.waitFor('pong');
});

test('listeners, a loopback connection between two processes of the tree, a bound and a fresh socket, and their options come back, twice in a row; compare agrees; crit decodes every image', async (t) => {
  const pair = makeHostPair('tcplo');
  t.after(() => pair.remove());
  const { a } = pair;
  const target = await startTarget('tcp_local', [], { netns: a.nsPath });
  const pids = descendants(target.pid);
  assert.equal(pids.length, 2, 'the target and its child');
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`tcp-local-${round}`);
    amberInOk(a, ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established']);
    for (const pid of pids) assert.equal((await reap(pid)).signal, 9, `round ${round}: pid ${pid} killed by the dump`);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.img') && !n.startsWith('pages-'))) critDecode(join(dir, f));
    const isk = critDecode(join(dir, 'files.img')).entries.filter((f) => f.type === 'INETSK').map((f) => f.isk as { state: number; backlog: number; family: number });
    assert.deepEqual(isk.map((e) => e.state).sort((x, y) => x - y), [1, 1, 7, 7, 10, 10], `round ${round}: two connection ends, two closed sockets, two listeners: ${JSON.stringify(isk)}`);
    assert.deepEqual(isk.filter((e) => e.state === 10).map((e) => e.backlog).sort((x, y) => x - y), [5, 17]);
    assert.equal(readdirSync(dir).filter((n) => n.startsWith('tcp-stream-')).length, 2, 'one tcp-stream image per connection end');
    const shown = amberInOk(a, ['show', dir]).stdout;
    assert.match(shown, /tcp-stream-[0-9a-f]+\.img/, 'amber show decodes the tcp-stream images');

    amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
    assert.ok(isAlive(target.pid), `round ${round}: pid ${target.pid} is back`);
    amberInOk(a, ['compare', '-t', String(target.pid), '-D', dir]);
  }
  const v = await verdict(target);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('a listener with a connection it has not accepted is refused (as CRIU does) with one line naming it and --skip-in-flight; with the flag the listener comes back without it and still accepts', async (t) => {
  const pair = makeHostPair('tcpin');
  t.after(() => pair.remove());
  const { a } = pair;
  const target = await startTarget('tcp_local', ['pending'], { netns: a.nsPath });
  const dir = makeTmpDir('tcp-pending');
  const args = ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established'];
  assertOneLineError(args, amberIn(a, args), new RegExp(`of pid ${target.pid} is a TCP listener on 127\\.0\\.0\\.1:\\d+ with 1 connection\\(s\\) not yet accepted, which amber \\(like CRIU\\) cannot dump; --skip-in-flight drops it`));
  assert.ok(isAlive(target.pid), 'the target keeps running');
  const pids = descendants(target.pid);
  const skipped = amberInOk(a, [...args, '--skip-in-flight']);
  assert.match(skipped.stderr, /not yet accepted: dropped \(--skip-in-flight\)/);
  for (const pid of pids) await reap(pid);
  amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
  const backlog = inNetnsOf(target.pid, () => inetSocketList(AF.INET, IPPROTO.TCP)).find((r) => r.state === 10);
  assert.equal(backlog?.rqueue, 0, 'the listener came back without the connection it had not accepted');
  const v = await verdict(target);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('half-closed connections come back in their states (FIN_WAIT2 and CLOSE_WAIT, the FIN unread); a connection being set up is refused without --skip-in-flight and comes back unconnected with it', async (t) => {
  const pair = makeHostPair('tcpst');
  t.after(() => pair.remove());
  const { a, b } = pair;
  const port = 7120;
  // host B drops the SYN: the target's connect stays in SYN_SENT
  const drop = dropRule(b, `tcp dport ${port}`);
  t.after(() => drop.remove());
  const target = await startTarget('tcp_states', [b.ipv4, String(port)], { netns: a.nsPath });
  const dir = makeTmpDir('tcp-states');
  const refused = ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established'];
  assertOneLineError(refused, amberIn(a, refused), new RegExp(`of pid ${target.pid} is a TCP connection ${a.ipv4.replace(/\./g, '\\.')}:\\d+ -> ${b.ipv4.replace(/\./g, '\\.')}:${port} still being set up \\(SYN_SENT\\).*--skip-in-flight`));
  assert.ok(isAlive(target.pid), 'the target keeps running after the refusal');
  amberInOk(a, [...refused, '--skip-in-flight']);
  assert.equal((await reap(target.pid)).signal, 9);
  const states = critDecode(join(dir, 'files.img')).entries.filter((f) => f.type === 'INETSK').map((f) => (f.isk as { state: number }).state);
  assert.deepEqual(states.sort((x, y) => x - y), [2, 5, 8], `SYN_SENT, FIN_WAIT2, CLOSE_WAIT: ${states}`);
  amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
  const v = await verdict(target);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('TCP sockets with TCP-MD5 keys, which amber cannot read back, are refused with one line; the target goes on', async (t) => {
  const pair = makeHostPair('tcpmd5');
  t.after(() => pair.remove());
  const target = await startTarget('tcp_local', ['md5'], { netns: pair.a.nsPath });
  const args = ['dump', '-t', String(target.pid), '-D', makeTmpDir('tcp-md5'), '--tcp-established'];
  assertOneLineError(args, amberIn(pair.a, args), new RegExp(`of pid ${target.pid} is a TCP socket 127\\.0\\.0\\.1:\\d+.* that has TCP-MD5 signature keys, which amber cannot dump`));
  const v = await verdict(target);
  assert.ok(v.passed, `target's own checks after the refused dump: ${v.lines.join(' | ')}`);
});

test("a process of another user gets its connection back owned by that user, as sock_diag and firewall owner matches see it", async (t) => {
  const pair = makeHostPair('tcpuid');
  t.after(() => pair.remove());
  const { a } = pair;
  const nobody = 65534;
  const workdir = makeTmpDir('tcp-uid-work');
  const target = await startTarget('tcp_states', ['--reuid=65534', '--regid=65534', '--clear-groups', targetPath('tcp_states')], { binary: '/usr/bin/setpriv', workdir, owner: nobody, netns: a.nsPath });
  const owners = () => inNetnsOf(target.pid, () => inetSocketList(AF.INET, IPPROTO.TCP)).map((r) => r.uid);
  assert.deepEqual(owners(), [nobody, nobody], 'both ends, made by the target');
  const dir = makeTmpDir('tcp-uid');
  amberInOk(a, ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established']);
  assert.equal((await reap(target.pid)).signal, 9);
  amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
  assert.deepEqual(owners(), [nobody, nobody], 'the restored sockets are the user\'s, not amber\'s');
  const v = await verdict(target);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

/** A tcp_conn target on host A connected to a peer of its own on host B. */
async function connectedTarget(t: { after(fn: () => void): void }, a: Host, b: Host, port: number) {
  const peer = startPeer(b, port, OUT_BYTES, IN_BYTES);
  t.after(() => { peer.child.kill('SIGKILL'); });
  await peer.waitFor('listening');
  const target = await startTarget('tcp_conn', [b.ipv4, String(port)], { netns: a.nsPath, timeoutMs: 30_000 });
  return { peer, target };
}

test('a dump failing after the connection went into repair mode takes it out again: the connection goes on', async (t) => {
  const pair = makeHostPair('tcpf');
  t.after(() => pair.remove());
  const { a, b } = pair;
  const { peer, target } = await connectedTarget(t, a, b, 7140);
  const dir = makeTmpDir('tcp-fault');
  const failing = ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established'];
  assertOneLineError(failing, amberIn(a, failing, { AMBER_FAULT: 'dump:before-inventory' }), /injected fault at dump:before-inventory/);
  assert.ok(isAlive(target.pid), 'the target keeps running after the failed dump');
  assert.deepEqual(nftTables(a), [], 'no lock left after the failed dump');
  peer.child.stdin!.write('read\n');
  // a socket left in repair mode sends nothing: the PING would never reach the peer
  const v = await verdict(target, 30_000);
  assert.ok(v.passed, `target's own checks after the failed dump: ${v.lines.join(' | ')}`);
  await peer.waitFor('pong');
});

test('--leave-running takes the connection out of repair mode and it goes on; the images then restore it closed with --tcp-close, and without either flag the restore is refused with one line', async (t) => {
  const pair = makeHostPair('tcplr');
  t.after(() => pair.remove());
  const { a, b } = pair;
  const { peer, target } = await connectedTarget(t, a, b, 7130);
  const dir = makeTmpDir('tcp-leave');
  amberInOk(a, ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established', '--leave-running']);
  assert.deepEqual(nftTables(a), [], 'no lock left after a --leave-running dump');
  peer.child.stdin!.write('read\n');
  const v = await verdict(target, 30_000);
  assert.ok(v.passed, `target's own checks after --leave-running: ${v.lines.join(' | ')}`);
  await peer.waitFor('pong');

  // the images outlive their target: refused without a flag, or restored closed (its checks then see no connection)
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amberIn(a, args), /the images hold a TCP connection .* -> .*:7130 \(ESTABLISHED\); restoring it needs --tcp-established \(or --tcp-close/);
  assert.ok(!isAlive(target.pid), 'nothing left of the refused restore');
  if (procState(target.pid) !== null) await reap(target.pid);
  amberInOk(a, [...args, '--tcp-close']);
  const closed = await verdict(target, 30_000);
  assert.ok(!closed.passed && closed.lines.some((l) => /Transport endpoint is not connected|EOF/.test(l)), `the restored socket is not connected: ${closed.lines.join(' | ')}`);
});

test('a connection whose FIN the peer has not acknowledged (FIN_WAIT1) comes back: the peer then gets the last bytes and the FIN, and its answer arrives', async (t) => {
  const pair = makeHostPair('tcpfin');
  t.after(() => pair.remove());
  const { a, b } = pair;
  const port = 7150;
  const { child, lines, waitFor } = startFinPeer(b, port);
  t.after(() => { child.kill('SIGKILL'); });
  await waitFor(/^listening$/);
  const starting = startTarget('tcp_states', ['fin1', b.ipv4, String(port)], { netns: a.nsPath, timeoutMs: 30_000 });
  await waitFor(/^accepted$/);
  // host A hears host B's data but none of its bare acknowledgements: the FIN stays unacknowledged
  const deaf = dropRule(a, `ip saddr ${b.ipv4} tcp sport ${port} tcp flags & (psh | fin) == 0`);
  t.after(() => deaf.remove());
  child.stdin!.write('go\n');
  const target = await starting;
  const dir = makeTmpDir('tcp-fin1');
  amberInOk(a, ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established']);
  assert.equal((await reap(target.pid)).signal, 9);
  const isk = critDecode(join(dir, 'files.img')).entries.find((f) => f.type === 'INETSK')?.isk as { state: number };
  assert.equal(isk.state, 4, 'FIN_WAIT1 at dump time');
  amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
  deaf.remove();
  child.stdin!.write('answer\n');
  const v = await verdict(target, 30_000);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
  await waitFor(/^got /);
  assert.deepEqual(lines.filter((l) => l.startsWith('got') || l.startsWith('error')), ['got "bye" then end'], lines.join(' | '));
});

test('a connection closed by the peer first and then by the target, its FIN not acknowledged yet (LAST_ACK), comes back and finishes closing', async (t) => {
  const pair = makeHostPair('tcpla');
  t.after(() => pair.remove());
  const { a, b } = pair;
  const port = 7160;
  const { child, lines, waitFor } = startFinPeer(b, port);
  t.after(() => { child.kill('SIGKILL'); });
  await waitFor(/^listening$/);
  const starting = startTarget('tcp_states', ['lastack', b.ipv4, String(port)], { netns: a.nsPath, timeoutMs: 30_000 });
  await waitFor(/^accepted$/);
  const deaf = dropRule(a, `ip saddr ${b.ipv4} tcp sport ${port} tcp flags & (psh | fin) == 0`);
  t.after(() => deaf.remove());
  child.stdin!.write('go\n');
  await new Promise((r) => setTimeout(r, 100));
  child.stdin!.write('answer\n');
  const target = await starting;
  const dir = makeTmpDir('tcp-lastack');
  amberInOk(a, ['dump', '-t', String(target.pid), '-D', dir, '--tcp-established']);
  assert.equal((await reap(target.pid)).signal, 9);
  const isk = critDecode(join(dir, 'files.img')).entries.find((f) => f.type === 'INETSK')?.isk as { state: number };
  assert.equal(isk.state, 9, 'LAST_ACK at dump time');
  amberInOk(a, ['restore', '-D', dir, '-d', '--tcp-established']);
  deaf.remove();
  const v = await verdict(target, 30_000);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
  await waitFor(/^got /);
  assert.deepEqual(lines.filter((l) => l.startsWith('got') || l.startsWith('error')), ['got "bye" then end'], lines.join(' | '));
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NetworkLock, NetworkLockError, iptablesLockScript, nftLockScript, type CommandRunner, type LockedConnection,
} from '@amber/plugin-net-tcp/dist/network-lock';
import { parseProcNetTcp } from '@amber/plugin-net-tcp/dist/lock-step';

// The network lock's pieces without netfilter: scripts, /proc parsing, which tool runs when.

const V4: LockedConnection = { local: { address: '10.77.1.1', port: 6379 }, remote: { address: '10.77.1.2', port: 40001 } };
const V6: LockedConnection = { local: { address: 'fd77:0:0:1::1', port: 80 }, remote: { address: 'fd77:0:0:1::2', port: 40002 } };
const MAPPED: LockedConnection = { local: { address: '::ffff:10.77.1.1', port: 81 }, remote: { address: '::ffff:10.77.1.2', port: 40003 } };

/** Records every command; answers with the first matching canned reply, else success. */
function recorder(replies: [RegExp, { status: number | null; stderr: string }][] = []) {
  const calls: { argv: string[]; input?: string }[] = [];
  const run: CommandRunner = (argv, input) => {
    calls.push({ argv, input });
    const line = argv.join(' ');
    return replies.find(([re]) => re.test(line))?.[1] ?? { status: 0, stderr: '' };
  };
  return { calls, run };
}

/** iptables's answer to -L of a chain that is not there. */
const NO_CHAIN: [RegExp, { status: number; stderr: string }] = [/tables -w -n -L /, { status: 1, stderr: 'iptables: No chain/target/match by that name.' }];

describe('nftLockScript', () => {
  it('puts each connection into its family\'s set, IPv4-mapped ones as IPv4, and matches both directions', () => {
    const s = nftLockScript('amber-42', [V4, V6, MAPPED]);
    assert.match(s, /^table inet amber-42 \{\}\nflush table inet amber-42\n/);
    assert.match(s, /add element inet amber-42 conns4 \{ 10\.77\.1\.1 \. 6379 \. 10\.77\.1\.2 \. 40001, 10\.77\.1\.1 \. 81 \. 10\.77\.1\.2 \. 40003 \}/);
    assert.match(s, /add element inet amber-42 conns6 \{ fd77:0:0:1::1 \. 80 \. fd77:0:0:1::2 \. 40002 \}/);
    // input: the peer's packets carry the local end as destination
    assert.match(s, /chain input \{[^}]*ip daddr \. tcp dport \. ip saddr \. tcp sport @conns4 drop/);
    assert.match(s, /chain output \{[^}]*ip saddr \. tcp sport \. ip daddr \. tcp dport @conns4 drop/);
    assert.doesNotMatch(s, /::ffff:/);
  });

  it('adds no element line for a family with no connection', () => {
    assert.doesNotMatch(nftLockScript('amber-1', [V4]), /add element inet amber-1 conns6/);
  });

  it('refuses what is not an address or a port (the script goes to nft as text)', () => {
    assert.throws(() => nftLockScript('amber-1', [{ ...V4, remote: { address: '1.2.3.4; flush ruleset', port: 1 } }]), /bad address/);
    assert.throws(() => nftLockScript('amber-1', [{ ...V4, local: { address: '10.0.0.1', port: 70000 } }]), /bad port/);
    assert.throws(() => nftLockScript('amber-1', [{ local: V4.local, remote: V6.remote }]), /mixes families/);
  });
});

describe('iptablesLockScript', () => {
  it('jumps from INPUT and OUTPUT into a chain of its own dropping both directions', () => {
    const s = iptablesLockScript('amber-7', [{ family: 4, local: V4.local, remote: V4.remote }]);
    assert.deepEqual(s.trim().split('\n'), [
      '*filter', ':amber-7 - [0:0]', '-I INPUT 1 -j amber-7', '-I OUTPUT 1 -j amber-7', '-A amber-7 -m mark --mark 0xc114 -j RETURN',
      '-A amber-7 -p tcp -s 10.77.1.2 --sport 40001 -d 10.77.1.1 --dport 6379 -j DROP',
      '-A amber-7 -p tcp -s 10.77.1.1 --sport 6379 -d 10.77.1.2 --dport 40001 -j DROP',
      'COMMIT',
    ]);
  });
});

describe('NetworkLock', () => {
  it('runs nft inside the network namespace of the pid it was given', () => {
    const r = recorder([[/nft list table/, { status: 1, stderr: 'Error: No such file or directory' }]]);
    const lock = new NetworkLock({ rootPid: 42, nsPid: 4242, run: r.run });
    lock.lock([V4]);
    assert.equal(lock.method, 'nftables');
    assert.ok(lock.locked);
    const applied = r.calls.find((c) => c.argv.includes('-f'))!;
    assert.deepEqual(applied.argv, ['nsenter', '--net=/proc/4242/ns/net', 'nft', '-f', '-']);
    assert.match(applied.input!, /table inet amber-42/);
    lock.unlock();
    assert.deepEqual(r.calls.at(-1)!.argv, ['nsenter', '--net=/proc/4242/ns/net', 'nft', 'delete', 'table', 'inet', 'amber-42']);
    // nsenter failing is not "already unlocked"
    const noNs = recorder([[/delete table/, { status: 1, stderr: 'nsenter: cannot open /proc/4242/ns/net: No such file or directory' }]]);
    assert.throws(() => new NetworkLock({ rootPid: 42, nsPid: 4242, run: noNs.run }).unlock(), /cannot delete table inet amber-42: nsenter: cannot open/);
    assert.ok(!lock.locked);
  });

  it('refuses to take over a table of the same name when dumping, and does when asked to replace it', () => {
    const r = recorder();
    assert.throws(() => new NetworkLock({ rootPid: 42, nsPid: 42, run: r.run }).lock([V4]), (e: unknown) =>
      e instanceof NetworkLockError && /table inet amber-42 already exists/.test(e.message) && e.pid === 42);
    assert.ok(!r.calls.some((c) => c.argv.includes('-f')), 'nothing applied');
    new NetworkLock({ rootPid: 42, nsPid: 42, run: r.run }).lock([V4], true);
    assert.ok(r.calls.some((c) => c.argv.includes('-f')));
  });

  it('falls back to iptables when nft is not installed, unless nftables was asked for', () => {
    const noNft: [RegExp, { status: number; stderr: string }][] = [
      [/ nft /, { status: 127, stderr: 'nsenter: failed to execute nft: No such file or directory' }],
      NO_CHAIN,
    ];
    const r = recorder(noNft);
    const lock = new NetworkLock({ rootPid: 5, nsPid: 5, run: r.run });
    lock.lock([V4, V6]);
    assert.equal(lock.method, 'iptables');
    const restores = r.calls.filter((c) => /tables-restore/.test(c.argv.join(' ')));
    assert.deepEqual(restores.map((c) => c.argv.slice(2)), [['iptables-restore', '-w', '--noflush'], ['ip6tables-restore', '-w', '--noflush']]);
    assert.match(restores[1].input!, /-s fd77:0:0:1::2 --sport 40002/);

    const strict = recorder(noNft);
    assert.throws(() => new NetworkLock({ rootPid: 5, nsPid: 5, method: 'nftables', run: strict.run }).lock([V4]), /cannot create table inet amber-5: nsenter: failed to execute nft/);
    assert.ok(!strict.calls.some((c) => /iptables/.test(c.argv.join(' '))));
  });

  it('a failed nft transaction is an error naming the pid and nft\'s own words', () => {
    const r = recorder([[/nft list/, { status: 1, stderr: '' }], [/nft -f/, { status: 1, stderr: 'Error: Could not process rule: Operation not supported\n' }]]);
    assert.throws(() => new NetworkLock({ rootPid: 9, nsPid: 99, run: r.run }).lock([V4]),
      /network lock \(nftables\) in the network namespace of pid 99: cannot create table inet amber-9: Error: Could not process rule: Operation not supported/);
  });

  it('an iptables lock that fails halfway removes what it made', () => {
    const r = recorder([[/ip6tables-restore/, { status: 2, stderr: 'ip6tables-restore: unable to initialize table' }]]);
    // no chain until the IPv4 commit made one
    const run: CommandRunner = (argv, input) => {
      const made = r.calls.some((c) => c.argv.includes('iptables-restore'));
      return !made && argv.includes('-L') ? (r.calls.push({ argv }), NO_CHAIN[1]) : r.run(argv, input);
    };
    const lock = new NetworkLock({ rootPid: 3, nsPid: 3, method: 'iptables', run });
    assert.throws(() => lock.lock([V4, V6]), /cannot add chain amber-3 \(IPv6\)/);
    const after = r.calls.map((c) => c.argv.slice(2).join(' '));
    assert.ok(after.includes('iptables -w -X amber-3'), after.join('\n'));
    assert.ok(!lock.locked);
  });

  it('takes over an iptables chain in one commit, jumping from the hooks that lack it; refuses it when dumping', () => {
    // the dump's chain is there, INPUT still jumps into it, OUTPUT's jump was removed by hand
    const r = recorder([[/-C OUTPUT -j amber-8$/, { status: 1, stderr: 'iptables: Bad rule' }], [/ip6tables -w -n -L/, { status: 1, stderr: '' }]]);
    new NetworkLock({ rootPid: 8, nsPid: 8, method: 'iptables', run: r.run }).lock([V4], true);
    const lines = r.calls.map((c) => c.argv.slice(2).join(' '));
    // nothing is removed before the new rules are in: the chain is emptied by the commit that fills it
    assert.deepEqual(lines, ['iptables -w -n -L amber-8', 'iptables -w -C INPUT -j amber-8', 'iptables -w -C OUTPUT -j amber-8', 'iptables-restore -w --noflush']);
    const script = r.calls.at(-1)!.input!.trim().split('\n');
    assert.deepEqual(script.slice(0, 3), ['*filter', ':amber-8 - [0:0]', '-I OUTPUT 1 -j amber-8']);
    assert.equal(script.filter((l) => / -j DROP$/.test(l)).length, 2);

    const dump = recorder([[/ip6tables -w -n -L/, { status: 1, stderr: '' }]]);
    assert.throws(() => new NetworkLock({ rootPid: 8, nsPid: 8, method: 'iptables', run: dump.run }).lock([V4]), (e: unknown) =>
      e instanceof NetworkLockError && /chain amber-8 already exists/.test(e.message) && e.pid === 8);
    assert.deepEqual(dump.calls.map((c) => c.argv.slice(2).join(' ')), ['iptables -w -n -L amber-8'], 'the other chain is left as it was');
  });

  it('unlocking a lock that is gone is not an error; another failure is', () => {
    const gone = recorder([[/delete table/, { status: 1, stderr: 'Error: Could not process rule: No such file or directory' }]]);
    new NetworkLock({ rootPid: 1, nsPid: 1, run: gone.run }).unlock();
    const busy = recorder([[/delete table/, { status: 1, stderr: 'Error: Could not process rule: Device or resource busy' }]]);
    assert.throws(() => new NetworkLock({ rootPid: 1, nsPid: 1, run: busy.run }).unlock(), /cannot delete table inet amber-1: .*busy/);
  });

  it('skip runs nothing', () => {
    const r = recorder();
    const lock = new NetworkLock({ rootPid: 1, nsPid: 1, method: 'skip', run: r.run });
    lock.lock([V4]);
    lock.unlock();
    assert.equal(r.calls.length, 0);
  });
});

describe('parseProcNetTcp', () => {
  // recorded from /proc/PID/net/tcp and tcp6 inside a test host (header line, then one per socket)
  const TCP = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 01014D0A:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51234 1 0000000000000000 100 0 0 10 0',
    '   1: 01014D0A:18EB 02014D0A:9C41 01 00000000:00000000 00:00000000 00000000     0        0 51240 1 0000000000000000 20 4 30 10 -1',
    '   2: 01014D0A:18EC 02014D0A:9C42 06 00000000:00000000 03:00001000 00000000     0        0 0 3 0000000000000000',
    '   3: 01014D0A:18ED 02014D0A:9C43 08 00000000:00000000 00:00000000 00000000     0        0 51250 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');
  const TCP6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0000000000000000FFFF00000101A8C0:0050 0000000000000000FFFF00000201A8C0:A000 01 00000000:00000000 00:00000000 00000000     0        0 61000 1 0000000000000000 20 4 0 10 -1',
    '   1: 000077FD010000000000000001000000:0050 000077FD010000000000000002000000:A001 01 00000000:00000000 00:00000000 00000000     0        0 61001 1 0000000000000000 20 4 0 10 -1',
  ].join('\n');

  it('keeps connected sockets by inode (ESTABLISHED, CLOSE_WAIT) with host-order addresses decoded', () => {
    const m = parseProcNetTcp(TCP);
    assert.deepEqual([...m.keys()], [51240n, 51250n]);
    assert.deepEqual(m.get(51240n), { local: { address: '10.77.1.1', port: 6379 }, remote: { address: '10.77.1.2', port: 40001 } });
    assert.equal(m.get(51250n)!.remote.port, 0x9c43);
  });

  it('decodes IPv6 words and IPv4-mapped addresses', () => {
    const m = parseProcNetTcp(TCP6);
    assert.deepEqual(m.get(61000n), { local: { address: '::ffff:192.168.1.1', port: 80 }, remote: { address: '::ffff:192.168.1.2', port: 0xa000 } });
    assert.deepEqual(m.get(61001n)!.local, { address: 'fd77:0:0:1:0:0:0:1', port: 80 });
  });
});

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  amber, buildTargets, cleanup, cliEntry, repoRoot, diffSnapshots, isAlive, parentOf, procState, reap, sleep,
  snapshotProc, startTarget, targetPath, verdict, WORKDIR,
} from '../harness';

// Harness self-tests: no checkpointing, just the targets' protocol and the harness's plumbing.

const SIGRTMIN_3 = 34 + 3;
const hasSignal = (mask: string, sig: number): boolean => ((BigInt(`0x${mask}`) >> BigInt(sig - 1)) & 1n) === 1n;

// What amber dump does to a target, from a separate process as the CLI will: seize, interrupt,
// wait for the stop, then detach or kill.
const TRACER = `
const c = require('@amber/core');
const [pid, mode] = [Number(process.argv[1]), process.argv[2]];
c.ptrace(c.PTRACE.SEIZE, pid, 0, 0);
c.ptrace(c.PTRACE.INTERRUPT, pid, 0, 0);
const w = c.waitpid(pid);
if (!c.WaitStatus.stopped(w.status)) throw new Error('not stopped: ' + c.WaitStatus.describe(w.status));
if (mode === 'kill') { c.kill(pid, 9); c.waitpid(pid); } else c.ptrace(c.PTRACE.DETACH, pid, 0, 0);
console.log('tracer ok');
`;

function foreignTracer(pid: number, mode: 'detach' | 'kill'): void {
  const r = spawnSync(process.execPath, ['-e', TRACER, String(pid), mode], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /tracer ok/);
}

before(async () => {
  await buildTargets();
});
after(async () => {
  await cleanup();
});

describe('targets', () => {
  it('are built as dynamically linked executables', () => {
    for (const name of ['skeleton', 'counter', 'busy_fd']) {
      const elf = fs.readFileSync(targetPath(name));
      assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF', name);
      assert.ok(elf.includes('/lib64/ld-linux-x86-64.so.2'), `${name} has no ELF interpreter (static?)`);
    }
  });

  it('skeleton reports READY, is reparented to us, and passes its self-check', async () => {
    const t = await startTarget('skeleton', [WORKDIR]);
    assert.ok(isAlive(t.pid));
    assert.equal(parentOf(t.pid), process.pid, 'target should be reparented to the test process (subreaper)');
    assert.ok(t.readyLines.includes(`READY ${t.pid}`));

    const snap = snapshotProc(t.pid);
    assert.equal(snap.status.Name, 'skeleton');
    assert.ok(hasSignal(snap.status.SigBlk, SIGRTMIN_3), `SigBlk ${snap.status.SigBlk} lacks SIGRTMIN+3`);
    assert.ok(hasSignal(snap.status.SigCgt, 10) && hasSignal(snap.status.SigCgt, 12), 'SIGUSR1/2 not caught');
    const log = snap.fds.find((f) => f.fd === 200);
    assert.ok(log && log.link.endsWith('/append.log'), `fd 200 is ${log?.link}`);
    assert.ok((parseInt(log.flags, 8) & 0o2000) !== 0, `fd 200 flags ${log.flags} lack O_APPEND`);
    const cloexec = snap.fds.find((f) => f.fd === 201);
    assert.ok(cloexec && (parseInt(cloexec.flags, 8) & 0o2000000) !== 0, 'fd 201 not O_CLOEXEC');
    assert.ok(snap.fds.some((f) => f.link.endsWith('/input.txt') && f.pos === 5), 'input.txt at offset 5');
    assert.ok(snap.maps.some((m) => m.endsWith('/mapped.dat')), 'mapped.dat mapping');
    assert.deepEqual(diffSnapshots(snap, snapshotProc(t.pid), { ignorePosOf: [1, 2] }), []);

    const v = await verdict(t);
    assert.deepEqual(v.exit.code, 0, v.lines.join('\n'));
    assert.ok(v.passed, v.lines.join('\n'));
    assert.equal(procState(t.pid), null, 'verdict should have reaped the target');
  });

  it('a failing self-check is reported as failed', async () => {
    const t = await startTarget('skeleton', [WORKDIR], { env: { AMBER_TARGET_SELFTEST_FAIL: '1' } });
    const v = await verdict(t);
    assert.equal(v.passed, false);
    assert.equal(v.exit.code, 1);
    assert.ok(v.lines.some((l) => l.startsWith('FAIL: heap word')), v.lines.join('\n'));
    assert.ok(!v.lines.includes('PASS'));
  });

  it('counter ticks and passes', async () => {
    const t = await startTarget('counter');
    await sleep(1_100);
    const v = await verdict(t);
    assert.ok(v.passed, v.lines.join('\n'));
    assert.ok(v.lines.some((l) => l.startsWith(`pid ${t.pid}: tick 2`)), v.lines.join('\n'));
  });

  it('busy_fd holds a userfaultfd and passes', async () => {
    const t = await startTarget('busy_fd');
    assert.ok(snapshotProc(t.pid).fds.some((f) => f.link === 'anon_inode:[userfaultfd]'));
    const v = await verdict(t);
    assert.ok(v.passed, v.lines.join('\n'));
  });
});

describe('harness', () => {
  it('reap returns the terminating signal of a killed target', async () => {
    const t = await startTarget('counter');
    process.kill(t.pid, 'SIGKILL');
    const exit = await reap(t.pid);
    assert.equal(exit.signal, 9);
    assert.equal(exit.code, null);
    assert.equal(isAlive(t.pid), false);
  });

  it('a target seized and detached by a separate tracer keeps running and passes', async () => {
    const t = await startTarget('skeleton', [WORKDIR]);
    foreignTracer(t.pid, 'detach');
    assert.ok(isAlive(t.pid));
    const v = await verdict(t);
    assert.ok(v.passed, v.lines.join('\n'));
  });

  it('a target killed by a separate tracer is reaped by us, freeing its pid', async () => {
    const t = await startTarget('counter');
    foreignTracer(t.pid, 'kill');
    assert.equal(isAlive(t.pid), false);
    assert.equal((await reap(t.pid)).signal, 9);
    assert.equal(procState(t.pid), null);
  });

  it('startTarget reports a target that dies before READY, with its log', async () => {
    // skeleton without WORKDIR prints its usage and exits 2.
    await assert.rejects(startTarget('skeleton', [], { timeoutMs: 5_000 }), /exited before READY[\s\S]*usage/);
  });

  it('diffSnapshots names what changed', () => {
    const a = { pid: 1, maps: ['m1', 'm2'], status: { Name: 'x', SigBlk: '0' }, fds: [{ fd: 3, link: '/a', flags: '02', pos: 0 }] };
    const b = { pid: 1, maps: ['m1', 'm3'], status: { Name: 'x', SigBlk: '1' }, fds: [{ fd: 3, link: '/a', flags: '02', pos: 7 }] };
    assert.deepEqual(diffSnapshots(a, b), [
      'maps: lost   m2', 'maps: gained m3', 'status SigBlk: 0 -> 1', 'fd 3: pos 0 -> 7',
    ]);
  });

  it('cleanup kills and reaps targets still running', async () => {
    const t = await startTarget('counter');
    await cleanup();
    assert.equal(procState(t.pid), null);
  });

  it('amber() runs the CLI and captures its output', (t) => {
    if (!fs.existsSync(cliEntry)) {
      t.skip(`${cliEntry} not present yet`);
      return;
    }
    const r = amber(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /dump/);
  });
});

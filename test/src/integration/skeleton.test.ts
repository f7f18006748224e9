import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, cleanup, cliEntry, describeAmber, diffSnapshots, isAlive, makeTmpDir, procState, reap, snapshotProc, startTarget,
  verdict, WORKDIR,
  amberOk,
} from '../harness';
import { parseMaps, processVmRead, processVmWrite } from '@amber/core';

after(cleanup);

const run = amberOk;

test('a dumped process is gone, comes back with its pid and its state, twice in a row', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const before = snapshotProc(t.pid);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`skeleton-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    // 64 MiB heap + a few pages of a 1 GiB sparse reservation + small stuff: present pages only
    const pages = statSync(join(dir, 'pages-1.img')).size;
    assert.ok(pages >= 64 << 20 && pages < 70 << 20, `pages image is ${pages} bytes`);
    const exit = await reap(t.pid);
    assert.equal(exit.signal, 9, `round ${round}: amber kills the tree after a dump (${exit.text})`);
    assert.equal(isAlive(t.pid), false);

    const pidfile = join(dir, 'restored.pid');
    run(['restore', '-D', dir, '-d', '--pidfile', pidfile]);
    assert.equal(readFileSync(pidfile, 'utf8').trim(), String(t.pid), '--pidfile names the root');
    assert.ok(isAlive(t.pid), `round ${round}: pid ${t.pid} is back`);
    assert.match(procState(t.pid) ?? '', /^[RS]$/, 'restored task runs (not stopped, not traced)');
    assert.deepEqual(diffSnapshots(before, snapshotProc(t.pid)), [], `round ${round}: /proc maps, status and fds as before`);
    run(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('--leave-running takes a snapshot and leaves the process running untouched', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const before = snapshotProc(t.pid);
  const dir = makeTmpDir('leave-running');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  assert.ok(isAlive(t.pid));
  assert.match(procState(t.pid) ?? '', /^[RS]$/);
  assert.deepEqual(diffSnapshots(before, snapshotProc(t.pid)), []);
  run(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('compare reports what changed since the dump', async () => {
  const t = await startTarget('counter');
  const dir = makeTmpDir('compare');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  // counter prints a line every 0.5 s: the offset of its stdout moves on.
  await new Promise((r) => setTimeout(r, 1200));
  const args = ['compare', '-t', String(t.pid), '-D', dir];
  const c = amber(args);
  assert.equal(c.status, 1, describeAmber(args, c));
  assert.match(c.stdout, /fd 1\b.*offset/s, describeAmber(args, c));
  const json = amber([...args, '--json']);
  const diffs = JSON.parse(json.stdout) as { plugin: string; what: string }[];
  assert.ok(diffs.some((d) => d.plugin === 'fs' && d.what.startsWith('fd 1')), json.stdout);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('compare --pages finds a page that changed in memory', async () => {
  const t = await startTarget('memhog', ['16']);
  const dir = makeTmpDir('compare-pages');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  run(['compare', '-t', String(t.pid), '-D', dir, '--pages']);
  // memhog's 16 MiB region: the anonymous rw mapping of that size
  const region = parseMaps(readFileSync(`/proc/${t.pid}/maps`, 'utf8')).find(
    (m) => m.perms === 'rw-p' && m.path === '' && m.end - m.start >= 16n << 20n,
  );
  assert.ok(region, 'found memhog region');
  const addr = region!.start + 4096n * 100n + 7n;
  const old = Buffer.alloc(1);
  processVmRead(t.pid, addr, old);
  processVmWrite(t.pid, addr, Buffer.from([old[0] ^ 0xff]));
  const args = ['compare', '-t', String(t.pid), '-D', dir, '--pages'];
  const c = amber(args);
  assert.equal(c.status, 1, describeAmber(args, c));
  assert.match(c.stdout, new RegExp(`page at 0x${(addr - 7n).toString(16)}`), describeAmber(args, c));
  processVmWrite(t.pid, addr, old);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('restore without -d waits for the process and passes on its exit status', async () => {
  // AMBER_TARGET_SELFTEST_FAIL makes skeleton fail one check on purpose: exit status 1
  for (const [env, want] of [[{}, 0], [{ AMBER_TARGET_SELFTEST_FAIL: '1' }, 1]] as const) {
    const t = await startTarget('skeleton', [WORKDIR], { env });
    const dir = makeTmpDir('attached');
    run(['dump', '-t', String(t.pid), '-D', dir]);
    await reap(t.pid);
    const child = spawn(process.execPath, [cliEntry, 'restore', '-D', dir], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 200 && !isAlive(t.pid); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(isAlive(t.pid), 'restored');
    await new Promise((r) => setTimeout(r, 200));
    process.kill(t.pid, 'SIGUSR1');
    assert.equal(await exited, want, `amber restore exits with the root's status (${want})`);
  }
});

test('compare reports a task that was stopped after the dump', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const dir = makeTmpDir('compare-state');
  run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  run(['compare', '-t', String(t.pid), '-D', dir]);
  process.kill(t.pid, 'SIGSTOP');
  const args = ['compare', '-t', String(t.pid), '-D', dir, '--json'];
  const stopped = amber(args);
  assert.equal(stopped.status, 1, describeAmber(args, stopped));
  const diffs = JSON.parse(stopped.stdout) as { plugin: string; what: string; expected: string; actual: string }[];
  assert.ok(diffs.some((d) => d.plugin === 'core' && d.what === 'state' && d.expected === 'running' && d.actual === 'stopped'), stopped.stdout);
  process.kill(t.pid, 'SIGCONT');
  run(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

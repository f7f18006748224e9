import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, test } from 'node:test';
import { amber, cleanup, describeAmber, isAlive, makeTmpDir, procState, startTarget, verdict, type Target } from '../harness';

// A process using io_uring has kernel worker threads that never stop for ptrace: before amber
// refused it, the dump froze the tree and hung for good, and killing amber killed the target.

after(cleanup);

const BOUND_MS = 20_000;

/** Runs a command that must refuse within BOUND_MS with one amber: line matching pattern. */
function assertRefused(args: string[], pattern: RegExp): void {
  const started = Date.now();
  const r = amber(args, { timeoutMs: BOUND_MS });
  const took = Date.now() - started;
  assert.notEqual(r.status, null, `amber hung (killed after ${took} ms): ${describeAmber(args, r)}`);
  assert.notEqual(r.status, 0, describeAmber(args, r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${describeAmber(args, r)}`);
  assert.match(lines[0], pattern, describeAmber(args, r));
  assert.match(lines[0], /nothing was changed and the process keeps running/);
}

/** Nothing of the target was seized: no thread traced or stopped, and it still runs. */
function assertUntouched(pid: number): void {
  assert.ok(isAlive(pid), `pid ${pid} still runs`);
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    assert.match(status, /^TracerPid:\s+0$/m, `thread ${tid} of ${pid} is not traced`);
    assert.doesNotMatch(status, /^State:\s+[tT]/m, `thread ${tid} of ${pid} is not stopped`);
  }
}

function childOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(children.length, 1, `pid ${pid} has one child`);
  return children[0];
}

async function assertPasses(t: Target): Promise<void> {
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
}

test('a SQPOLL ring (iou-sqp thread) is refused before seizing, naming pid, fd and io_uring; the target keeps running', async () => {
  const t = await startTarget('io_uring', ['sqpoll']);
  for (const command of ['dump', 'pre-dump']) {
    const args = [command, '-t', String(t.pid), '-D', makeTmpDir(`iou-sqpoll-${command}`)];
    assertRefused(args, new RegExp(`^amber: fd 12 of pid ${t.pid} is anon_inode:\\[io_uring\\]: no plugin handles it.*\\(iou-sqp-${t.pid}\\)`));
    assertUntouched(t.pid);
  }
  // --only mm looks at no fd, but the freeze would still hang on the workers
  const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('iou-sqpoll-mm'), '--only', 'mm', '--leave-running'];
  assertRefused(args, new RegExp(`^amber: fd 12 of pid ${t.pid} is anon_inode:\\[io_uring\\]`));
  assertUntouched(t.pid);
  await assertPasses(t);
});

test('a ring with async work in flight (iou-wrk thread) is refused, and the pending read still completes', async () => {
  const t = await startTarget('io_uring', ['worker']);
  const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('iou-worker')];
  assertRefused(args, new RegExp(`^amber: fd 12 of pid ${t.pid} is anon_inode:\\[io_uring\\]: .*\\(iou-wrk-${t.pid}\\)`));
  assertUntouched(t.pid);
  await assertPasses(t);
});

test('a ring whose fd is closed (mapped, its worker alive) is refused naming the worker thread', async () => {
  const t = await startTarget('io_uring', ['closed']);
  assert.ok(!readdirSync(`/proc/${t.pid}/fd`).some((fd) => readlinkSync(`/proc/${t.pid}/fd/${fd}`) === 'anon_inode:[io_uring]'));
  const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('iou-closed')];
  assertRefused(args, new RegExp(`^amber: pid ${t.pid} maps an io_uring ring at 0x[0-9a-f]+ \\(its fd is closed\\).* \\d+ \\(iou-sqp-${t.pid}\\)`));
  assertUntouched(t.pid);
  await assertPasses(t);
});

test('io_uring in a descendant is refused naming the descendant; neither process is seized', async () => {
  const t = await startTarget('io_uring', ['child']);
  const child = childOf(t.pid);
  const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('iou-child')];
  assertRefused(args, new RegExp(`^amber: fd 12 of pid ${child} is anon_inode:\\[io_uring\\].*\\(iou-sqp-${child}\\)`));
  assertUntouched(t.pid);
  assertUntouched(child);
  await assertPasses(t);
});

// node's libuv puts its file-system work on io_uring rings when UV_USE_IO_URING=1.
const NODE_TARGET = `
const fs = require('fs');
const untouched = () => fs.readdirSync('/proc/self/task').every((tid) => {
  const s = fs.readFileSync('/proc/self/task/' + tid + '/status', 'utf8');
  return /^TracerPid:\\s+0$/m.test(s) && !/^State:\\s+[tT]/m.test(s);
});
const tick = setInterval(() => fs.readFile('/proc/self/stat', () => {}), 20);
fs.readFile('/proc/self/stat', () => console.log('READY ' + process.pid));
process.on('SIGUSR1', () => {
  clearInterval(tick);
  fs.readFile('/proc/self/stat', (err) => {
    if (err) console.log('FAIL: readFile: ' + err.message);
    else if (!untouched()) console.log('FAIL: a thread is traced or stopped');
    else console.log('PASS');
    process.exit(err ? 1 : 0);
  });
});
`;

test('node with UV_USE_IO_URING=1 is refused naming one of its ring fds, and keeps running', async () => {
  const t = await startTarget('node-io-uring', ['-e', NODE_TARGET], { binary: process.execPath, env: { UV_USE_IO_URING: '1' } });
  const rings = readdirSync(`/proc/${t.pid}/fd`).filter((fd) => readlinkSync(`/proc/${t.pid}/fd/${fd}`) === 'anon_inode:[io_uring]');
  assert.ok(rings.length > 0, `node made an io_uring (fds of ${t.pid})`);
  const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir('iou-node')];
  assertRefused(args, new RegExp(`^amber: fd (${rings.join('|')}) of pid ${t.pid} is anon_inode:\\[io_uring\\]: no plugin handles it`));
  assertUntouched(t.pid);
  assert.match(procState(t.pid) ?? '', /^[RS]$/);
  await assertPasses(t);
});

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { kill, SIG } from '@amber/core';
import { amber, becomeSubreaper, cleanup, describeAmber, isAlive, makeTmpDir, parentOf, procState, reap, sleep, startTarget, targetPath, verdict } from '../harness';

after(cleanup);

function statOf(pid: number): { comm: string; ppid: number; pgid: number; sid: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) };
}

const tracerOf = (pid: number) => Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

async function waitForReady(log: string, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = existsSync(log) ? /^READY (\d+)$/m.exec(readFileSync(log, 'utf8')) : null;
    if (m) return Number(m[1]);
    if (Date.now() > deadline) throw new Error(`no READY in ${log}: ${readFileSync(log, 'utf8')}`);
    await sleep(10);
  }
}

/** The target's verdict after READY: SIGUSR1, then its PASS/FAIL lines. */
async function selfCheck(pid: number, log: string, exited: () => Promise<number | null>): Promise<string[]> {
  kill(pid, SIG.USR1);
  const code = await exited();
  const lines = readFileSync(log, 'utf8').split('\n');
  const after = lines.slice(lines.findIndex((l) => l.startsWith('READY ')) + 1).filter(Boolean);
  assert.equal(code, 0, `target exit status: ${after.join(' | ')}`);
  return after;
}

function assertRefusedByLeader(args: string[], r: ReturnType<typeof amber>, pid: number, kind: string, leader: number, comm: string): void {
  assert.notEqual(r.status, 0, describeAmber(args, r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${describeAmber(args, r)}`);
  assert.equal(
    lines[0],
    `amber: pid ${pid} is in ${kind} ${leader}, whose leader (pid ${leader}, ${comm}) is outside the dumped tree: ` +
      `dump from the ${kind === 'session' ? 'session' : 'group'} leader, or use -j/--shell-job to dump it as a job of that shell`,
  );
}

function assertUntouched(pid: number, dir: string): void {
  assert.ok(isAlive(pid), `pid ${pid} still runs`);
  assert.match(procState(pid) ?? '', /^[RS]$/, 'not stopped');
  assert.equal(tracerOf(pid), 0, 'not traced');
  assert.ok(!readdirSync(dir).includes('inventory.img'), 'no complete image set');
}

test('a child in a session led by a live shell outside the tree is refused, naming the leader, and keeps running', async () => {
  becomeSubreaper();
  const work = makeTmpDir('leader-sh');
  const log = join(work, 'counter.log');
  const shPidFile = join(work, 'sh.pid');
  const logFd = openSync(log, 'a');
  // sh becomes the session and group leader; the target is its child, in its session and group.
  const r0 = spawnSync('setsid', ['-f', 'sh', '-c', 'echo $$ >"$1"; "$2" & wait', 'sh', shPidFile, targetPath('counter')], {
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  assert.equal(r0.status, 0);
  const pid = await waitForReady(log);
  const shPid = Number(readFileSync(shPidFile, 'utf8'));
  assert.deepEqual([statOf(pid).ppid, statOf(pid).sid, statOf(pid).pgid], [shPid, shPid, shPid]);
  const dir = makeTmpDir('leader-sh-img');
  const args = ['dump', '-t', String(pid), '-D', dir];
  const r = amber(args);
  assertRefusedByLeader(args, r, pid, 'session', shPid, 'sh');
  assertUntouched(pid, dir);
  const lines = await selfCheck(pid, log, async () => {
    // counter is sh's child: sh's wait reaps it, then sh (ours, as subreaper) exits with its status
    if (parentOf(shPid) !== process.pid) throw new Error(`sh ${shPid} is not ours`);
    return (await reap(shPid)).code;
  });
  assert.ok(lines.includes('PASS'), lines.join(' | '));
});

test("a child in the test harness's own session and group is refused, naming the live leader, and keeps running", async () => {
  const me = statOf(process.pid);
  // The harness's session leader (a shell, the CI runner) normally lives; if it exited, its group
  // leader must live, or this environment cannot show the case.
  const kind = existsSync(`/proc/${me.sid}`) ? 'session' : 'process group';
  const leader = kind === 'session' ? me.sid : me.pgid;
  assert.ok(existsSync(`/proc/${leader}`), `the test runs with a live session or group leader (sid ${me.sid}, pgid ${me.pgid})`);
  const work = makeTmpDir('leader-harness');
  const log = join(work, 'counter.log');
  const logFd = openSync(log, 'a');
  const child = spawn(targetPath('counter'), [], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const pid = await waitForReady(log);
    assert.equal(pid, child.pid);
    assert.deepEqual([statOf(pid).sid, statOf(pid).pgid], [me.sid, me.pgid]);
    const dir = makeTmpDir('leader-harness-img');
    const args = ['dump', '-t', String(pid), '-D', dir];
    const r = amber(args);
    assertRefusedByLeader(args, r, pid, kind, leader, statOf(leader).comm);
    assertUntouched(pid, dir);
    const lines = await selfCheck(pid, log, () => exit);
    assert.ok(lines.includes('PASS'), lines.join(' | '));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('a task another process traces is refused, naming the tracer, and keeps running', async () => {
  const t = await startTarget('counter');
  const tracer = await startTarget('tracer', [String(t.pid)]);
  assert.equal(tracerOf(t.pid), tracer.pid);
  const dir = makeTmpDir('traced');
  const args = ['dump', '-t', String(t.pid), '-D', dir];
  const r = amber(args);
  assert.notEqual(r.status, 0, describeAmber(args, r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, describeAmber(args, r));
  assert.equal(lines[0], `amber: pid ${t.pid} is already traced by pid ${tracer.pid} (tracer): a task has one tracer (a debugger, or a checkpoint in progress): detach it or wait until it is done`);
  assert.ok(isAlive(t.pid));
  assert.match(procState(t.pid) ?? '', /^[RS]$/);
  assert.equal(tracerOf(t.pid), tracer.pid, 'still traced by its own tracer only');
  assert.ok((await verdict(tracer)).passed);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

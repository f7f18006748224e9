import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { kill, SIG } from '@amber/core';
import { amber, cleanup, cliEntry, describeAmber, isAlive, makeTmpDir, parentOf, readLog, reap, sleep, startTarget, WORKDIR } from '../harness';

after(cleanup);

// A foreground restore (no -d) used to print nothing until the restored tree exited: a user saw a
// silent amber and could not tell whether the process was back.

test('a foreground restore says the tree runs while it runs, then passes on its exit status', async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const dir = makeTmpDir('restore-output');
  const dumpArgs = ['dump', '-t', String(t.pid), '-D', dir];
  const d = amber(dumpArgs);
  assert.equal(d.status, 0, describeAmber(dumpArgs, d));
  await reap(t.pid);

  const child = spawn(process.execPath, [cliEntry, 'restore', '-D', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let exited = false;
  void closed.then(() => (exited = true));

  const restored = new RegExp(`^Restored pid ${t.pid} from ${dir} in [\\d.]+ s; .*waiting for it to exit$`, 'm');
  const deadline = Date.now() + 30_000;
  try {
    while (!restored.test(stdout) && !exited && Date.now() < deadline) await sleep(20);
    assert.match(stdout, restored, `amber restore printed, before the tree exited:\nstdout: ${stdout}\nstderr: ${stderr}`);
    assert.ok(isAlive(t.pid), 'the tree still runs when the line is printed');
    assert.equal(exited, false, 'amber still waits for the tree');
  } finally {
    // the restored root is amber's child now (amber is its subreaper): end it by pid, only if it is that one
    if (isAlive(t.pid) && parentOf(t.pid) === child.pid) kill(t.pid, SIG.USR1);
  }
  const code = await Promise.race([closed, sleep(20_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') child.kill('SIGKILL');
  assert.equal(code, 0, `amber restore passed on the root's exit status\nstdout: ${stdout}\nstderr: ${stderr}`);
  const log = readLog(t).split('\n');
  const afterReady = log.slice(log.map((l) => l.startsWith('READY ')).lastIndexOf(true) + 1).filter(Boolean);
  assert.ok(afterReady.includes('PASS') && !afterReady.some((l) => l.startsWith('FAIL')), afterReady.join(' | '));
  assert.equal(stdout.trim().split('\n').length, 1, `one line on stdout: ${stdout}`);
});

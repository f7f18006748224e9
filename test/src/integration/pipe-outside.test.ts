import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { close, kill, O, pipe2, SIG } from '@amber/core';
import { amber, becomeSubreaper, cleanup, cliEntry, describeAmber, isAlive, makeTmpDir, parentOf, reap, sleep, targetPath } from '../harness';

after(cleanup);

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Reads a non-blocking pipe until every writer is gone. */
async function readToEnd(fd: number, timeoutMs = 15_000): Promise<string> {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      if (Date.now() > deadline) throw new Error(`pipe still open after ${timeoutMs} ms; read so far: ${Buffer.concat(chunks)}`);
      await sleep(10);
      continue;
    }
    if (n === 0) return Buffer.concat(chunks).toString();
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

test('a pipe to a reader outside the tree: the dump says so, the restore refuses without --inherit-fd and writes into the pipe handed in with it', async () => {
  becomeSubreaper();
  const work = makeTmpDir('pipe-outside');
  const log = join(work, 'pipe_out.log');
  const catOut = join(work, 'cat.out');
  // `target | cat`: the target is its own session leader (setsid -f), cat stays outside.
  const shell = spawn('sh', ['-c', 'setsid -f "$0" 3>&1 >>"$1" 2>&1 | cat >>"$2"', targetPath('pipe_out'), log, catOut], { stdio: 'ignore' });
  const shellDone = new Promise<void>((resolve) => shell.on('exit', () => resolve()));
  const pid = await until('READY', () => {
    const m = existsSync(log) ? /^READY (\d+)$/m.exec(readFileSync(log, 'utf8')) : null;
    return m ? Number(m[1]) : undefined;
  });
  assert.equal(parentOf(pid), process.pid, 'the target is ours (subreaper)');
  const link = readlinkSync(`/proc/${pid}/fd/3`);
  const ino = /^pipe:\[(\d+)\]$/.exec(link)?.[1];
  assert.ok(ino, `fd 3 is a pipe: ${link}`);

  const dir = makeTmpDir('pipe-outside-img');
  const dumpArgs = ['dump', '-t', String(pid), '-D', dir];
  const d = amber(dumpArgs);
  assert.equal(d.status, 0, describeAmber(dumpArgs, d));
  const warnings = d.stderr.trim().split('\n').filter((l) => l.includes('warning:'));
  assert.equal(warnings.length, 1, `one warning line: ${d.stderr}`);
  assert.match(warnings[0], new RegExp(`pid ${pid} fd 3 is pipe:\\[${ino}\\], whose other end is held outside the dumped tree by pid \\d+ \\(cat\\) fd 0: restore it with --inherit-fd fd\\[N\\]:pipe:\\[${ino}\\]`));
  await reap(pid);
  await shellDone; // cat saw the end of its pipe
  assert.equal(readFileSync(catOut, 'utf8'), `before ${pid}\n`);

  // Without a replacement end the pipe would come back with no reader: refused, nothing left.
  const bare = ['restore', '-D', dir, '-d'];
  const r0 = amber(bare);
  assert.notEqual(r0.status, 0, describeAmber(bare, r0));
  const lines = r0.stderr.trim().split('\n');
  assert.equal(lines.length, 1, describeAmber(bare, r0));
  assert.equal(
    lines[0],
    `amber: pid ${pid} holds pipe:[${ino}], whose other end was outside the dumped tree: it would come back with no ` +
      `other end; hand one in with --inherit-fd fd[N]:pipe:[${ino}] (N: an fd of amber's for that end)`,
  );
  assert.equal(isAlive(pid), false, 'the refused restore left no running process');
  await reap(pid).catch(() => undefined); // the killed task, reparented to us

  // A pipe of the test's own, handed to amber as its fd 3.
  const [readEnd, writeEnd] = pipe2(O.NONBLOCK | O.CLOEXEC);
  try {
    const args = ['restore', '-D', dir, '-d', '--inherit-fd', `fd[3]:pipe:[${ino}]`];
    const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', writeEnd], timeout: 60_000 });
    close(writeEnd);
    assert.equal(r.status, 0, `amber ${args.join(' ')}: ${r.stderr}`);
    assert.ok(isAlive(pid), 'restored');
    assert.equal(readlinkSync(`/proc/${pid}/fd/3`), readlinkSync(`/proc/${process.pid}/fd/${readEnd}`), "the target's fd 3 is our pipe");
    kill(pid, SIG.USR1);
    const exit = await reap(pid);
    const text = await readToEnd(readEnd);
    assert.equal(text, `after restore ${pid}\n`, 'what the restored process wrote into the pipe');
    assert.equal(exit.code, 0, `${exit.text}; log: ${readFileSync(log, 'utf8')}`);
    assert.match(readFileSync(log, 'utf8'), /^PASS$/m);
  } finally {
    try {
      closeSync(readEnd);
    } catch {
      // closed
    }
  }
});

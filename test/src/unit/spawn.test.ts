import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KernelError, spawnProgram, waitpid, WaitStatus, WALL } from '@amber/core';

test('spawnProgram: a session of its own, /dev/null on 0-2, the given fd as 3, no signal blocked or ignored, no environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'amber-spawn-'));
  try {
    const out = join(dir, 'out');
    const fd = openSync(out, 'w');
    let pid: number;
    try {
      // sh reports on its own fd 3: what its fds 0-2 are, its session, its blocked and ignored signals, its environment
      const script = 'readlink /proc/self/fd/0 /proc/self/fd/2 >&3; echo "sid $(cut -d" " -f6 /proc/self/stat) pid $$" >&3; grep -E "^Sig(Blk|Ign)" /proc/self/status >&3; echo "env [$(env | grep -v "^PWD=" | tr "\\n" " ")]" >&3';
      pid = spawnProgram('/bin/sh', ['sh', '-c', script], { fd3: fd, newSession: true });
    } finally {
      closeSync(fd);
    }
    const { status } = waitpid(pid, WALL);
    assert.ok(WaitStatus.exited(status) && WaitStatus.exitCode(status) === 0, `sh ${WaitStatus.describe(status)}`);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['/dev/null', '/dev/null']);
    const [, sid, , shPid] = lines[2].split(' ');
    // sh -c with one command may exec it: the session is the spawned process's, whichever pid reports
    assert.equal(Number(sid), pid, `session ${sid} (sh ${shPid}), spawned ${pid}`);
    assert.match(lines[3], /^SigBlk:\s+0+$/);
    // node ignores SIGPIPE: the child must not inherit that
    assert.match(lines[4], /^SigIgn:\s+0+$/);
    assert.equal(lines[5], 'env []');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spawnProgram: a program that cannot be run is one KernelError naming it, and no child is left', () => {
  assert.throws(() => spawnProgram('/nonexistent/amber-helper', ['x'], { newSession: false }), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.equal(e.errnoName, 'ENOENT');
    assert.match(e.message, /posix_spawn.*\/nonexistent\/amber-helper/);
    return true;
  });
  // no child of ours is left to reap (ECHILD)
  assert.throws(() => waitpid(-1, WALL | 1 /* WNOHANG */), (e: unknown) => e instanceof KernelError && e.errnoName === 'ECHILD');
});

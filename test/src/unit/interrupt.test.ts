import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import {
  checkpoint, InterruptedError, InterruptGuard, KSIGACTION_SIZE, rtSigaction, SIG, waitpidOrInterrupted, WAKE_SIGNAL,
} from '@amber/core';

function disposition(sig: number): Buffer {
  const old = Buffer.alloc(KSIGACTION_SIZE);
  rtSigaction(sig, null, old);
  return old;
}

test('an interrupt ends a blocked wait4 on the main thread, is thrown once, and the old dispositions come back', async () => {
  const before = [SIG.INT, SIG.TERM, SIG.HUP, SIG.QUIT].map(disposition);
  const sleeper = spawn('sleep', ['5']);
  const guard = InterruptGuard.arm();
  try {
    assert.doesNotThrow(() => checkpoint(), 'nothing to throw before a signal');
    // sent by another process: the kernel picks whichever of Node's threads does not block it
    spawn('/bin/sh', ['-c', `sleep 0.2; kill -TERM ${process.pid}`], { stdio: 'ignore' });
    const t0 = Date.now();
    const r = waitpidOrInterrupted(sleeper.pid!);
    assert.equal(r, undefined, 'the wait4 returned EINTR');
    assert.ok(Date.now() - t0 < 3000, `woken after ${Date.now() - t0} ms, not when sleep ended`);
    assert.ok(guard.interrupted);
    assert.equal(guard.signal, SIG.TERM);
    assert.throws(() => checkpoint(), (e: unknown) => e instanceof InterruptedError && e.message === 'interrupted by SIGTERM');
    assert.doesNotThrow(() => checkpoint(), 'thrown once: the undo that follows runs to its end');
  } finally {
    guard.disarm();
    sleeper.kill('SIGKILL');
  }
  assert.deepEqual([SIG.INT, SIG.TERM, SIG.HUP, SIG.QUIT].map(disposition), before, 'previous dispositions restored');
  assert.notEqual(disposition(WAKE_SIGNAL).readBigUInt64LE(0), 0n, 'the wake signal keeps its no-op handler (its default would kill)');
});

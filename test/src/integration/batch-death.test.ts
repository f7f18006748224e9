import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { cleanup, isAlive, procState, reap, spawnAmber, startTarget, tracerOf, until, verdict } from '../harness';

after(cleanup);

/**
 * Where amber dies: in a batch of injected calls (core/ptrace/parked-batch.ts), and around the
 * munmap of the scratch area at the end (RemoteSyscall.finishLanded), where a death once left the
 * main thread in unmapped code.
 */
const POINTS = ['die:batch-running', 'die:batch-stopped', 'die:batch-parked', 'die:finish-landed', 'die:finish-unmapping', 'die:finish-unmapped'];
/** state: handlers, SIG_IGN, blocked and pending signals; threads; vector_regs: SSE/AVX state. */
const TARGETS: [string, string[]][] = [['state', []], ['threads', []], ['vector_regs', []]];

/** Per thread: pending, shared pending and blocked signals, as /proc shows them. */
function signalState(pid: number): string {
  return readdirSync(`/proc/${pid}/task`).sort().map((tid) => {
    const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    return ['SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt'].map((k) => `${k}=${new RegExp(`${k}:\\s+(\\S+)`).exec(st)?.[1]}`).join(',');
  }).join(' ');
}

for (const [name, args] of TARGETS) {
  test(`amber SIGKILLed inside a batch of injected calls or around the last munmap (${name}): the target puts itself back, signals included`, async () => {
    for (const point of POINTS) {
      const t = await startTarget(name, args);
      const before = signalState(t.pid);
      const run = spawnAmber(['dump', '-t', String(t.pid), '-D', `${t.workdir}/img`, '--leave-running'], { env: { AMBER_FAULT: point }, timeoutMs: 60_000 });
      const r = await run.done;
      assert.equal(r.signal, 'SIGKILL', `${point}: amber died there (status ${r.status}, ${r.stderr.trim()})`);
      await until(() => !isAlive(t.pid) || (tracerOf(t.pid) === 0 && /^[RS]$/.test(procState(t.pid) ?? '')), 2_000);
      if (!isAlive(t.pid)) assert.fail(`${point}: ${name} died: ${(await reap(t.pid, 5_000)).text}`);
      assert.equal(tracerOf(t.pid), 0, `${point}: untraced`);
      // a thread that was stopped when amber died may need a moment to run back (a loaded machine)
      await until(() => signalState(t.pid) === before, 5_000);
      assert.equal(signalState(t.pid), before, `${point}: pending, blocked and ignored signals as they were`);
      const v = await verdict(t, 10_000);
      assert.ok(v.passed, `${point}: ${name} failed its self-check: ${v.lines.join(' | ')}`);
    }
  });
}

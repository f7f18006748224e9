import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { errnoNumber, F, KernelError, O, RemoteSyscall, Tracee } from '@amber/core';
import { cleanup, isAlive, startTarget, verdict } from '../harness';

after(cleanup);

// The typed injected calls in a real task: arguments reach the kernel in order, strings are staged,
// and a failure is a KernelError naming the call, the pid, the errno and what the call was about.
test('remote.sys runs the table\'s calls in the task; -errno becomes a KernelError', async () => {
  const t = await startTarget('counter');
  const tracee = Tracee.seize(t.pid);
  const regs = tracee.getRegs();
  let remote: RemoteSyscall | undefined;
  try {
    const r = (remote = RemoteSyscall.bootstrap(tracee));
    assert.equal(remote.sys.getpid(), t.pid);
    const fd = remote.sys.open('/proc/self/status', O.RDONLY | O.CLOEXEC, 0);
    assert.ok(fd >= 0);
    // fcntl(fd, F_DUPFD, 100): the lowest free fd >= 100 only if fd and 100 went in that order
    const dup = remote.sys.fcntl(fd, F.DUPFD, 100);
    assert.ok(dup >= 100, `F_DUPFD gave ${dup}`);
    assert.equal(remote.sysRaw.close(dup), 0);
    assert.equal(remote.sysRaw.close(dup), -errnoNumber('EBADF'));
    assert.throws(
      () => r.sys.with(`fd ${dup}`).fcntl(dup, F.GETFL, 0),
      (e: unknown) => e instanceof KernelError && e.errnoName === 'EBADF' && e.pid === t.pid &&
        e.message === `fcntl(F_GETFL) (in the task) failed: EBADF (pid ${t.pid}, fd ${dup})`,
    );
    assert.throws(() => r.sys.open('/nonexistent/amber', O.RDONLY, 0), /^KernelError: open \(in the task\) failed: ENOENT/);
    remote.sys.close(fd);
  } finally {
    remote?.finish(regs, 'same-task');
    tracee.detachQuietly();
  }
  assert.ok(isAlive(t.pid));
  const v = await verdict(t);
  assert.ok(v.passed, `the target's own checks: ${v.lines.join(' | ')}`);
});

// invokeMany: the call loop runs the calls in the task in one stop, as sys would one by one.
test('invokeMany runs several calls in one stop; the first failure throws and the rest do not run', async () => {
  const t = await startTarget('counter');
  const tracee = Tracee.seize(t.pid);
  const regs = tracee.getRegs();
  let remote: RemoteSyscall | undefined;
  try {
    const r = (remote = RemoteSyscall.bootstrap(tracee));
    const fd = r.sys.open('/proc/self/status', O.RDONLY | O.CLOEXEC, 0);
    let resumes = 0;
    const cont = tracee.cont.bind(tracee);
    tracee.cont = (sig?: number) => {
      resumes++;
      cont(sig);
    };
    const [pid, dup, again] = r.invokeMany([
      { name: 'getpid', args: [] },
      { name: 'fcntl', args: [fd, F.DUPFD, 200] },
      { name: 'getpid', args: [] },
    ]);
    assert.equal(resumes, 1, 'one stop for three calls');
    assert.equal(pid, t.pid);
    assert.equal(again, t.pid);
    assert.ok(dup >= 200, `F_DUPFD gave ${dup}`);
    assert.throws(
      () => r.invokeMany([
        { name: 'close', args: [dup], detail: `fd ${dup}` },
        { name: 'close', args: [dup], detail: `fd ${dup}` },
        { name: 'fcntl', args: [fd, F.DUPFD, 300] },
      ]),
      (e: unknown) => e instanceof KernelError && e.errnoName === 'EBADF' && e.message === `close (in the task) failed: EBADF (pid ${t.pid}, fd ${dup})`,
    );
    assert.equal(r.sysRaw.fcntl(300, F.GETFD, 0), -errnoNumber('EBADF'), 'the call after the failure did not run');
    tracee.cont = cont;
    r.sys.close(fd);
  } finally {
    remote?.finish(regs, 'same-task');
    tracee.detachQuietly();
  }
  const v = await verdict(t);
  assert.ok(v.passed, `the target's own checks: ${v.lines.join(' | ')}`);
});

// argsFrom: a call of the loop takes what an earlier one returned, in the same stop; runCalls
// reports the failure and which calls ran instead of throwing.
test('a call of the loop takes an earlier call\'s result as an argument; runCalls reports what ran', async () => {
  const t = await startTarget('counter');
  const tracee = Tracee.seize(t.pid);
  const regs = tracee.getRegs();
  let remote: RemoteSyscall | undefined;
  try {
    const r = (remote = RemoteSyscall.bootstrap(tracee));
    let resumes = 0;
    const cont = tracee.cont.bind(tracee);
    tracee.cont = (sig?: number) => {
      resumes++;
      cont(sig);
    };
    // open, then F_DUPFD of what open returned, then close of the open's fd: the dup survives
    const [fd, dup, closed] = r.invokeMany([
      { name: 'open', args: ['/proc/self/status', O.RDONLY | O.CLOEXEC, 0] },
      { name: 'fcntl', args: [-1, F.DUPFD, 250], argsFrom: [{ arg: 0, call: 0 }] },
      { name: 'close', args: [-1], argsFrom: [{ arg: 0, call: 0 }] },
    ]);
    assert.equal(resumes, 1, 'one stop for the three calls');
    assert.ok(fd >= 0 && fd < 250, `open gave ${fd}`);
    assert.ok(dup >= 250, `F_DUPFD on the opened fd gave ${dup}`);
    assert.equal(closed, 0);
    assert.equal(r.sysRaw.fcntl(fd, F.GETFD, 0), -errnoNumber('EBADF'), 'the opened fd was closed through its forwarded number');
    assert.ok(r.sysRaw.fcntl(dup, F.GETFD, 0) >= 0, 'the dup is open');
    // a failure in the middle: the calls before it ran, the ones after did not
    const out = r.runCalls([
      { name: 'fcntl', args: [dup, F.DUPFD, 260] },
      { name: 'close', args: [-1], argsFrom: [{ arg: 0, call: 0 }] },
      { name: 'close', args: [-1], argsFrom: [{ arg: 0, call: 0 }], detail: 'again' },
      { name: 'close', args: [dup] },
    ]);
    assert.equal(resumes, 4, 'one stop for the four (after two single calls)');
    assert.ok(out.results[0]! >= 260);
    assert.deepEqual(out.results.slice(1), [0, -errnoNumber('EBADF'), undefined]);
    assert.ok(out.error instanceof KernelError && out.error.errnoName === 'EBADF' && out.error.message === `close (in the task) failed: EBADF (pid ${t.pid}, again)`, String(out.error));
    assert.ok(r.sysRaw.fcntl(dup, F.GETFD, 0) >= 0, 'the call after the failure did not run');
    assert.throws(() => r.invokeMany([{ name: 'getpid', args: [] }, { name: 'close', args: [0], argsFrom: [{ arg: 0, call: 1 }] }]), /does not run before it/);
    tracee.cont = cont;
    r.sys.close(dup);
  } finally {
    remote?.finish(regs, 'same-task');
    tracee.detachQuietly();
  }
  const v = await verdict(t);
  assert.ok(v.passed, `the target's own checks: ${v.lines.join(' | ')}`);
});

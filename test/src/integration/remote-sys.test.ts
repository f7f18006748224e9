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

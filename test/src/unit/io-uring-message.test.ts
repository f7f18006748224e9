import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AmberError, IoUringError, PF_IO_WORKER } from '@amber/core';

test('an io_uring refusal is one line naming pid, then fd, ring address or worker threads', () => {
  const workers = [{ tid: 4243, comm: 'iou-sqp-4242' }];
  const byFd = new IoUringError({ pid: 4242, fd: 12, workers });
  assert.ok(byFd instanceof AmberError);
  assert.equal(
    byFd.message,
    'fd 12 of pid 4242 is anon_inode:[io_uring]: no plugin handles it, and its kernel worker thread(s) 4243 (iou-sqp-4242) ' +
      'never stop for ptrace; nothing was changed and the process keeps running ' +
      '(amber cannot checkpoint a process that uses io_uring, whatever --only or --skip)',
  );
  assert.match(new IoUringError({ pid: 4242, fd: 7, workers: [] }).message, /^fd 7 of pid 4242 is anon_inode:\[io_uring\]: no plugin handles it, and its kernel workers would never stop/);
  assert.match(
    new IoUringError({ pid: 4242, mappedAt: 0x7f0000001000n, workers }).message,
    /^pid 4242 maps an io_uring ring at 0x7f0000001000 \(its fd is closed\): no plugin handles it, and its kernel worker thread\(s\) 4243 \(iou-sqp-4242\)/,
  );
  assert.match(
    new IoUringError({ pid: 4242, workers: [{ tid: 4250, comm: 'iou-wrk-4242' }, { tid: 4251, comm: 'iou-wrk-4242' }] }).message,
    /^pid 4242 has io_uring worker thread\(s\) 4250 \(iou-wrk-4242\), 4251 \(iou-wrk-4242\), which never stop for ptrace/,
  );
  assert.ok(!byFd.message.includes('\n'));
  assert.equal(PF_IO_WORKER, 0x10);
});

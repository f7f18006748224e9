import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { amber, cleanup, describeAmber, isAlive, makeTmpDir, startTarget, verdict, WORKDIR } from '../harness';

// A hint is followed literally by someone in a hurry: it must say what the suggested command does,
// and doing it must do that. The old unclaimed-fd hint ("--only mm, or --skip fs") led a user to
// kill a working server: without --leave-running that dump kills the process, and the restored
// one has no fds.

after(cleanup);

function untraced(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) =>
    /^TracerPid:\s+0$/m.test(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')),
  );
}

test('the unclaimed-fd refusal says what a memory-only dump does, and following it does exactly that', async () => {
  const t = await startTarget('busy_fd');
  const refused = ['dump', '-t', String(t.pid), '-D', makeTmpDir('hint-unclaimed')];
  const r = amber(refused);
  assert.notEqual(r.status, 0, describeAmber(refused, r));
  const line = r.stderr.trim();
  assert.equal(line.split('\n').length, 1, describeAmber(refused, r));
  assert.match(line, new RegExp(`^amber: fd 100 of pid ${t.pid} is anon_inode:\\[userfaultfd\\], which no plugin can dump`));
  assert.match(line, /--only mm --leave-running makes a memory-only snapshot for inspection \(amber show, amber compare\) and the process keeps running/);
  assert.match(line, /it cannot be restored to a working process \(it would have no open files\)/);
  assert.match(line, /a dump without --leave-running kills the process/);
  assert.doesNotMatch(line, /--skip fs/, 'no hint to a dump that would kill the process and lose its fds');

  // follow it: the snapshot is made, the process keeps running untraced, show reads the snapshot
  const dir = makeTmpDir('hint-followed');
  const followed = ['dump', '-t', String(t.pid), '-D', dir, '--only', 'mm', '--leave-running'];
  const d = amber(followed);
  assert.equal(d.status, 0, describeAmber(followed, d));
  assert.ok(isAlive(t.pid), 'the process keeps running');
  assert.ok(untraced(t.pid));
  const show = amber(['show', dir]);
  assert.equal(show.status, 0, describeAmber(['show', dir], show));

  // ... and it cannot be restored to a working process: restore refuses, saying what --skip would do
  const restore = ['restore', '-D', dir, '-d'];
  const rr = amber(restore);
  assert.notEqual(rr.status, 0, describeAmber(restore, rr));
  // (every plugin the snapshot lacks is named: fs, and tty since it restores terminals)
  assert.match(rr.stderr.trim(), /^amber: this is a partial dump without fs\b.*--skip fs(,[\w-]+)* restores it anyway: the process comes back without what they hold, with no open files\)$/);

  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('the --ghost-limit refusal names the limit that lets the dump copy the file, and that limit works', async () => {
  const t = await startTarget('files', [WORKDIR]);
  let limit = 8;
  for (let round = 0; ; round++) {
    const args = ['dump', '-t', String(t.pid), '-D', makeTmpDir(`hint-ghost-${round}`), '--leave-running', '--ghost-limit', String(limit)];
    const r = amber(args);
    if (r.status === 0) break;
    assert.ok(round < 10, `still refused after ${round} raised limits: ${describeAmber(args, r)}`);
    const m = /is the unlinked file .* of (\d+) bytes of data .*keeps running \(--ghost-limit (\d+) or more lets the dump copy the file's data into the images\)$/.exec(r.stderr.trim());
    assert.ok(m, describeAmber(args, r));
    assert.equal(m[2], m[1], 'the suggested limit is the size of the file');
    assert.ok(Number(m[2]) > limit);
    limit = Number(m[2]);
    assert.ok(isAlive(t.pid));
  }
  assert.ok(isAlive(t.pid));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, cleanup, isAlive, makeTmpDir, procState, reap, startTarget, verdict, WORKDIR, amberOk, descendants } from '../harness';

after(cleanup);

function identity(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return `pid ${pid} state ${f[0]} ppid ${f[1]} pgid ${f[2]} sid ${f[3]}`;
}

const run = amberOk;

test('a tree with groups, a session, a grandchild, a zombie and a stopped child comes back as it was, twice', async () => {
  const t = await startTarget('tree');
  const pids = descendants(t.pid);
  assert.equal(pids.length, 7, `root + A, G, B, C, Z, S: ${pids.join(' ')}`);
  const before = pids.map(identity).sort();
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`tree-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    // the root is ours; its children were reparented to us (the subreaper) when it died
    for (const pid of pids) await reap(pid);
    for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} is gone`);
    run(['restore', '-D', dir, '-d']);
    const after = pids.map(identity).sort();
    assert.deepEqual(after, before, `round ${round}: every task with its pid, parent, group, session and state`);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `tree's own checks: ${v.lines.join(' | ')}`);
});

test('four threads come back with their tids, TLS, masks and alternate stacks, twice', async () => {
  const t = await startTarget('threads');
  const tids = readdirSync(`/proc/${t.pid}/task`).map(Number).sort();
  assert.equal(tids.length, 4);
  const masks = tids.map((tid) => /SigBlk:\s+(\S+)/.exec(readFileSync(`/proc/${t.pid}/task/${tid}/status`, 'utf8'))![1]);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`threads-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    await reap(t.pid);
    run(['restore', '-D', dir, '-d']);
    assert.deepEqual(readdirSync(`/proc/${t.pid}/task`).map(Number).sort(), tids, `round ${round}: the same tids`);
    const after = tids.map((tid) => /SigBlk:\s+(\S+)/.exec(readFileSync(`/proc/${t.pid}/task/${tid}/status`, 'utf8'))![1]);
    assert.deepEqual(after, masks, 'per-thread signal masks');
    assert.match(procState(t.pid) ?? '', /^[RS]$/);
    run(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `threads' own checks: ${v.lines.join(' | ')}`);
});

test('a tree that keeps forking and spawning threads is frozen consistently', async () => {
  const t = await startTarget('spawner');
  for (let i = 0; i < 5; i++) {
    const dir = makeTmpDir(`moving-snap-${i}`);
    run(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
    assert.match(procState(t.pid) ?? '', /^[RS]$/, 'still running after a snapshot');
  }
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`moving-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    const shown = amber(['show', join(dir, 'pstree.img'), '--json']);
    const pids = (JSON.parse(shown.stdout) as { entries: { pid: number }[] }).entries.map((e) => e.pid);
    for (const pid of pids) await reap(pid);
    run(['restore', '-D', dir, '-d']);
    assert.ok(isAlive(t.pid));
    await new Promise((r) => setTimeout(r, 100));
  }
  const v = await verdict(t);
  assert.ok(v.passed, `spawner's own checks: ${v.lines.join(' | ')}`);
});

test('two processes sharing an fd table and cwd (CLONE_FILES | CLONE_FS) still share them', async () => {
  const t = await startTarget('shared_files');
  const pids = descendants(t.pid);
  assert.equal(pids.length, 2);
  const dir = makeTmpDir('clone-files');
  run(['dump', '-t', String(t.pid), '-D', dir]);
  const ids = pids.map((pid) => JSON.parse(amber(['show', join(dir, `ids-${pid}.img`), '--json']).stdout).entries[0]);
  assert.equal(ids[0].filesId, ids[1].filesId, 'one fd table id for both');
  assert.equal(ids[0].fsId, ids[1].fsId, 'one fs id for both');
  assert.notEqual(ids[0].vmId, ids[1].vmId, 'two address spaces');
  for (const pid of pids) await reap(pid);
  run(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, `shared_files' own checks: ${v.lines.join(' | ')}`);
});

test('a file, a pipe with data and their offsets stay shared between a parent and its child', async () => {
  const t = await startTarget('fork_fds', [WORKDIR]);
  const pids = descendants(t.pid);
  assert.equal(pids.length, 2);
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`fork-fds-${round}`);
    run(['dump', '-t', String(t.pid), '-D', dir]);
    for (const pid of pids) await reap(pid);
    run(['restore', '-D', dir, '-d']);
    run(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `fork_fds' own checks: ${v.lines.join(' | ')}`);
});

test('members of a group and of a session whose leaders exited keep them, through stand-in leaders', async () => {
  const t = await startTarget('orphans');
  const pids = descendants(t.pid);
  assert.equal(pids.length, 3, `the subreaper and its two adopted members: ${pids.join(' ')}`);
  const before = pids.map(identity).sort();
  const dir = makeTmpDir('orphans');
  run(['dump', '-t', String(t.pid), '-D', dir]);
  for (const pid of pids) await reap(pid);
  run(['restore', '-D', dir, '-d']);
  assert.deepEqual(pids.map(identity).sort(), before, 'pids, parents, groups and sessions');
  assert.equal(descendants(t.pid).length, 3, 'no stand-in is left behind');
  run(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `orphans' own checks: ${v.lines.join(' | ')}`);
});

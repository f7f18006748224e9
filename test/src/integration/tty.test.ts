import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { amberOk, cleanup, diffSnapshots, isAlive, makeTmpDir, reap, snapshotProc, startTarget, verdict, descendants } from '../harness';

after(cleanup);

test('two pty pairs (termios, window size, packet mode, bytes queued both ways), a session with its controlling terminal and foreground group come back, twice in a row', async () => {
  const t = await startTarget('ttys');
  const pids = descendants(t.pid);
  assert.equal(pids.length, 3, `root, session leader, foreground child: ${pids.join(' ')}`);
  const before = pids.map((pid) => snapshotProc(pid));
  for (let round = 1; round <= 2; round++) {
    const dir = makeTmpDir(`tty-${round}`);
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    const exit = await reap(t.pid);
    assert.equal(exit.signal, 9, `round ${round}: ${exit.text}`);
    // the root's children were reparented to us (the subreaper) when it died
    for (const pid of pids.slice(1)) await reap(pid);
    amberOk(['restore', '-D', dir, '-d']);
    for (const pid of pids) assert.ok(isAlive(pid), `round ${round}: pid ${pid} is back`);
    // the report pipe is a new pipe: only its inode may change; /dev/pts/N links must not
    const diffs = (i: number) => diffSnapshots(before[i], snapshotProc(pids[i])).filter((d) => !/: link pipe:\[\d+\] -> pipe:\[\d+\]$/.test(d));
    pids.forEach((pid, i) => assert.deepEqual(diffs(i), [], `round ${round}: pid ${pid} as before`));
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

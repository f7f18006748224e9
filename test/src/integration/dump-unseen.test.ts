import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { amberOk, cleanup, descendants, isAlive, makeTmpDir, startTarget, verdict, WORKDIR } from '../harness';

after(cleanup);

// A --leave-running dump must be invisible to the target: no fanotify or inotify event on a file
// it holds open, maps shared or private, holds unlinked, on its cwd or its executable.
test('a --leave-running dump generates no fanotify or inotify event on anything the target holds', async () => {
  const t = await startTarget('dump_unseen', [WORKDIR]);
  amberOk(['dump', '-t', String(t.pid), '-D', makeTmpDir('dump-unseen'), '--leave-running']);
  assert.deepEqual(descendants(t.pid).filter((p) => !isAlive(p)), []);
  const v = await verdict(t);
  assert.ok(v.passed, `dump_unseen's own checks: ${v.lines.join(' | ')}`);
});

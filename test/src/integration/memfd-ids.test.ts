import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { amberOk, cleanup, makeTmpDir, reap, startTarget, verdict } from '../harness';

after(cleanup);

/**
 * The fs plugin (memfds held as fds) and the mm plugin (mapped memfds, shared anonymous memory)
 * meet the same kind of objects: one registry of inodes in the core gives each one id for both, so
 * neither overwrites the other's pagemap-shmem-<id>, and a memfd held as an fd and mapped is
 * dumped once and comes back as one inode.
 */
test('memfds held as fds, mapped, or both, next to shared anonymous memory, come back whole and one inode each', async () => {
  const t = await startTarget('memfd_ids', []);
  const dir = makeTmpDir('memfd-ids-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d']);
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  const v = await verdict(t);
  assert.ok(v.passed, `memfd_ids' own checks: ${v.lines.join(' | ')}`);
});

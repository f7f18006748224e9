import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, amberOk, cleanup, describeAmber, isAlive, makeTmpDir, reap, startTarget, targetPath, verdict } from '../harness';

// A device number in an image reaches any device: a removed device node is made again only by
// root itself, never by amber acting for a sudo user, even one whose own process held the node.

after(cleanup);

const NOBODY = 65534;

test('a removed device node held by a nobody process is not re-created through sudo (one line, nothing left), and is by root', async () => {
  const workdir = makeTmpDir('ghost-device-sudo');
  chownSync(workdir, NOBODY, NOBODY);
  const node = join(workdir, 'full-node');
  const mk = spawnSync('mknod', ['-m', '0640', node, 'c', '1', '7'], { encoding: 'utf8' });
  assert.equal(mk.status, 0, `mknod: ${mk.stderr}`);
  chownSync(node, NOBODY, NOBODY);
  const t = await startTarget('fs_edge', ['--reuid=65534', '--regid=65534', '--clear-groups', targetPath('fs_edge'), 'device', workdir], {
    binary: '/usr/bin/setpriv', workdir, owner: NOBODY,
  });
  const dir = makeTmpDir('ghost-device-sudo-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  const leftovers = () => readdirSync(workdir).filter((n) => n.includes('full-node'));
  assert.deepEqual(leftovers(), [], 'the target removed its node');

  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args, { env: { SUDO_UID: String(NOBODY), SUDO_GID: String(NOBODY) } });
  assert.notEqual(r.status, 0, describeAmber(args, r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${describeAmber(args, r)}`);
  assert.match(lines[0], new RegExp(`^amber: pid ${t.pid}: the removed device node ${node} can only be re-created by root itself, not through sudo$`));
  assert.equal(isAlive(t.pid), false, 'no half-restored task is left');
  await reap(t.pid).catch(() => undefined);
  assert.deepEqual(leftovers(), [], 'no node is left');

  amberOk(args);
  assert.ok(isAlive(t.pid), 'restored by root');
  const v = await verdict(t);
  assert.ok(v.passed, `fs_edge's own checks: ${v.lines.join(' | ')}`);
});

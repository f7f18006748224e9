import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, amberOk, cleanup, describeAmber, isAlive, makeTmpDir, reap, repoRoot, startTarget, verdict } from '../harness';

after(cleanup);

const EXAMPLE = join(repoRoot, 'test', 'fixtures', 'amber-plugin-example');

/**
 * A third-party package (plain JavaScript, outside the repo's workspaces) owns an fd kind no
 * built-in plugin claims, namespace fds, through the same FileKind contract as fs's kinds: the core
 * routes the fds to it, shares the one open file among its fds, keeps close-on-exec, and opens
 * nothing itself.
 */
test('a third-party plugin\'s own fd kind (namespace fds) dumps and restores a real process', async () => {
  const t = await startTarget('ns_fds');
  const dir = makeTmpDir('plugin-fd-kind');
  const plugin = ['--plugin', EXAMPLE];

  // without the plugin nobody claims them: refused, the process left running
  const refused = amber(['dump', '-t', String(t.pid), '-D', makeTmpDir('plugin-fd-kind-refused')]);
  assert.notEqual(refused.status, 0, describeAmber(['dump'], refused));
  assert.match(refused.stderr, new RegExp(`fd 3 of pid ${t.pid} is net:\\[\\d+\\], which no plugin can dump`));
  assert.ok(isAlive(t.pid), 'the refused dump left it running');

  amberOk(['dump', '-t', String(t.pid), '-D', dir, ...plugin]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d', ...plugin]);
  amberOk(['compare', '-t', String(t.pid), '-D', dir, ...plugin]);
  const shown = amberOk(['show', dir, ...plugin]);
  assert.match(shown.stdout, /nsf/, 'amber show decodes the plugin\'s member of files.img');
  assert.doesNotMatch(shown.stdout, /unknown field 5/, 'with the plugin loaded the member is decoded, not shown raw');
  const v = await verdict(t);
  assert.ok(v.passed, `ns_fds' own checks: ${v.lines.join(' | ')}`);
});

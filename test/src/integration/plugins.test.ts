import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, cleanup, describeAmber, isAlive, makeTmpDir, reap, repoRoot, startTarget, verdict, WORKDIR } from '../harness';

after(cleanup);

/**
 * The example plugin listed in amber's own configuration (plugins.json in the CLI package's
 * directory) for the length of body: the explicit way to install a plugin from elsewhere.
 */
async function withExamplePluginConfigured(body: () => Promise<void>): Promise<void> {
  const config = join(repoRoot, 'cli', 'plugins.json');
  assert.ok(!existsSync(config), `${config} exists already; this test would overwrite it`);
  writeFileSync(config, JSON.stringify([join(repoRoot, 'test', 'fixtures', 'amber-plugin-example')]), { mode: 0o644 });
  try {
    await body();
  } finally {
    rmSync(config, { force: true });
  }
}

test('a plugin in a separate package, listed in amber\'s plugins.json, runs in its phase and reads back its own image', async () => {
  const cwd = makeTmpDir('plugin-cwd');
  const log = join(cwd, 'example.log');
  const env = { AMBER_EXAMPLE_LOG: log };
  const t = await startTarget('skeleton', [WORKDIR]);
  const dir = makeTmpDir('plugin-images');
  const run = (args: string[]) => {
    const r = amber(args, { cwd, env });
    assert.equal(r.status, 0, describeAmber(args, r));
  };
  await withExamplePluginConfigured(async () => {
    run(['dump', '-t', String(t.pid), '-D', dir]);
    assert.ok(readdirSync(dir).includes(`example-${t.pid}.img`), 'the plugin wrote its image');
    await reap(t.pid);
    run(['restore', '-D', dir, '-d']);
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
      `dump ${t.pid}`,
      `restore task-state ${t.pid} skeleton written by the example plugin`,
    ]);
    run(['compare', '-t', String(t.pid), '-D', dir]);
  });
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('--plugin PATH loads a plugin that is not installed', async () => {
  const t = await startTarget('counter');
  const dir = makeTmpDir('plugin-path');
  const log = join(dir, 'example.log');
  const args = ['dump', '-t', String(t.pid), '-D', dir, '--leave-running', '--plugin', join(repoRoot, 'test', 'fixtures', 'amber-plugin-example')];
  const r = amber(args, { env: { AMBER_EXAMPLE_LOG: log } });
  assert.equal(r.status, 0, describeAmber(args, r));
  assert.equal(readFileSync(log, 'utf8').trim(), `dump ${t.pid}`);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('--only mm makes a memory-only dump that restore refuses unless told to skip the rest', async () => {
  const t = await startTarget('busy_fd');
  const dir = makeTmpDir('only-mm');
  // busy_fd holds a userfaultfd no plugin can dump: a memory-only dump does not look at fds.
  const d = amber(['dump', '-t', String(t.pid), '-D', dir, '--only', 'mm', '--leave-running']);
  assert.equal(d.status, 0, d.stderr);
  assert.ok(!readdirSync(dir).some((f) => f.startsWith('fdinfo-')), 'no fd table in a memory-only dump');
  assert.ok(readdirSync(dir).some((f) => f.startsWith('pages-')));
  const show = amber(['show', dir, '--json']);
  assert.equal(show.status, 0, show.stderr);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
  assert.equal(isAlive(t.pid), false);

  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args);
  assert.notEqual(r.status, 0, describeAmber(args, r));
  assert.match(r.stderr, /partial dump without fs.*--skip fs/);
  assert.equal(isAlive(t.pid), false, 'nothing was created');
});

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { procState, removeTmpDirs } from '../harness';
import { childrenOf, stopTmuxServers, TmuxServer } from '../harness/tmux';

after(async () => {
  await stopTmuxServers();
  removeTmpDirs();
});

test('tmux harness: a private server, typing and capture, and stop() ends every process under it, even one that ignores SIGHUP', async () => {
  const tmux = TmuxServer.start('harness', { width: 90, height: 20 });
  const pane = tmux.firstPane;
  assert.ok(existsSync(tmux.socket), 'the server listens on the socket in its own temp dir');
  assert.equal(tmux.tmux(['display-message', '-p', '-t', pane, '#{window_width}x#{window_height}']).trim(), '90x20');
  await tmux.waitForText(pane, '$ ');
  tmux.type(pane, 'echo "sum=$((40 + 2))"');
  await tmux.waitForText(pane, 'sum=42');
  tmux.type(pane, "trap '' HUP; exec sleep 1000");
  const shell = tmux.panePid(pane);
  const deadline = Date.now() + 5000;
  while (!(procState(shell) !== null && /^sleep/.test(readFileSync(`/proc/${shell}/comm`, 'utf8')))) {
    if (Date.now() > deadline) throw new Error('the pane did not exec sleep');
    await new Promise((r) => setTimeout(r, 20));
  }
  const under = [tmux.pid, ...childrenOf(tmux.pid)];
  assert.ok(under.includes(shell));
  await assert.rejects(tmux.waitForText(pane, 'never shown', 200), /did not show never shown within 200 ms/);
  await tmux.stop();
  for (const pid of under) assert.equal(procState(pid), null, `pid ${pid} is gone and reaped`);
  assert.notEqual(tmux.tryTmux(['list-sessions']).status, 0, 'the server is gone');
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { kill, SIG, ttyInheritKey } from '@amber/core';
import { amber, amberOk, assertOneLineError, cleanup, cliEntry, critDecode, describeAmber, isAlive, makeTmpDir, parentOf, procState, reap, sleep, targetPath } from '../harness';
import { childrenOf, holdPtys, stopTmuxServers, TmuxServer, waitForFile } from '../harness/tmux';

after(async () => {
  await stopTmuxServers();
  await cleanup();
});

interface JobStat {
  ppid: number;
  pgrp: number;
  sid: number;
  ttyNr: number;
  /** The foreground group of its controlling terminal. */
  tpgid: number;
}

function jobStat(pid: number): JobStat {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), pgrp: Number(f[2]), sid: Number(f[3]), ttyNr: Number(f[4]), tpgid: Number(f[5]) };
}

/** st_rdev of a pane's tty: for /dev/pts/N the same number as a task's tty_nr. */
const ttyDevice = (tty: string) => statSync(tty).rdev;

async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A script for a pane: `amber restore -j` (amber's terminal is then the pane's), its status, and
 * then a read from the terminal by the same process group as amber: it only gets the line if
 * amber took the terminal back when the job ended (else the read stops the group with SIGTTOU's
 * sibling, SIGTTIN, and "after=" never shows).
 */
function restoreScript(dir: string, images: string, extra: string[] = [], name = 'restore.sh'): string {
  const script = join(dir, name);
  writeFileSync(
    script,
    [
      `"${process.execPath}" "${cliEntry}" restore -j -D "${images}" ${extra.join(' ')}`,
      'echo "amber-exit=$?"',
      'read -r x',
      'echo "after=$x"',
      '',
    ].join('\n'),
  );
  return script;
}

/** The restored task must be amber's child (the one the pane runs) before a test signals it. */
function assertRestoredByAmber(pid: number): void {
  const parent = jobStat(pid).ppid;
  const cmd = readFileSync(`/proc/${parent}/cmdline`, 'utf8');
  assert.ok(cmd.includes(cliEntry), `pid ${pid}'s parent ${parent} is amber (${cmd.replace(/\0/g, ' ')})`);
}

/** Both panes' shells are at their prompt. */
async function waitForPrompts(tmux: TmuxServer, ...panes: string[]): Promise<void> {
  for (const pane of panes) await tmux.waitForText(pane, '$ ');
}

/**
 * Ends a restored counter job: SIGUSR1 makes it check itself and exit, the script in `pane` sees
 * amber exit 0, and its shell reads a line from the terminal again (amber gave it back).
 */
async function endCounter(tmux: TmuxServer, pane: string, pid: number, log: string): Promise<void> {
  kill(pid, SIG.USR1);
  await tmux.waitForText(pane, 'amber-exit=0');
  const verdict = readFileSync(log, 'utf8').split('\n');
  assert.ok(verdict.includes('PASS') && !verdict.some((l) => l.startsWith('FAIL')), verdict.slice(-5).join(' | '));
  tmux.type(pane, 'back');
  await tmux.waitForText(pane, 'after=back', 10_000);
  await tmux.stop();
}

test("a shell job (output redirected) comes back in the session of amber's shell, as the foreground job of amber's terminal, which amber takes back when it ends", async () => {
  const tmux = TmuxServer.start('job');
  const [paneA, paneB] = [tmux.firstPane, tmux.newWindow('b')];
  await waitForPrompts(tmux, paneA, paneB);
  const log = join(tmux.dir, 'counter.log');
  tmux.type(paneA, `${targetPath('counter')} >>${log} 2>&1 </dev/null`);
  const pid = Number((await waitForFile(log, /^READY (\d+)$/m))[1]);
  const shellA = tmux.panePid(paneA);
  assert.deepEqual(jobStat(pid), { ppid: shellA, pgrp: pid, sid: shellA, ttyNr: ttyDevice(tmux.paneTty(paneA)), tpgid: pid }, 'a foreground job of pane A');

  const images = makeTmpDir('job-img');
  const refused = ['dump', '-t', String(pid), '-D', images];
  assertOneLineError(
    refused,
    amber(refused),
    new RegExp(`^amber: pid ${pid} \\(on terminal ${tmux.paneTty(paneA)}\\) is in session ${shellA}, whose leader \\(pid ${shellA}, bash\\) is outside the dumped tree: .*-j/--shell-job`),
  );
  assert.ok(isAlive(pid), 'a refused dump leaves the job running');

  amberOk(['dump', '-j', '-t', String(pid), '-D', images]);
  await until(`pid ${pid} to be gone after the dump`, () => procState(pid) === null);

  // Without -j the restore refuses: the images hold a session led from outside the tree.
  const plain = ['restore', '-D', images];
  assertOneLineError(plain, amber(plain), new RegExp(`^amber: pid ${pid} was dumped in session ${shellA}, whose leader was outside the tree \\(a shell job\\): restore it with -j/--shell-job`));
  assert.equal(procState(pid), null, 'a refused restore creates nothing');

  // with TOSTOP, amber's own "Restored" line, written once the job has the terminal, would stop amber
  tmux.type(paneB, `stty tostop; bash ${restoreScript(tmux.dir, images)}`);
  await until(`pid ${pid} to be restored`, () => isAlive(pid));
  await tmux.waitForText(paneB, `Restored pid ${pid}`);
  assertRestoredByAmber(pid);
  const shellB = tmux.panePid(paneB);
  const now = jobStat(pid);
  assert.deepEqual(
    { pgrp: now.pgrp, sid: now.sid, ttyNr: now.ttyNr, tpgid: now.tpgid },
    { pgrp: pid, sid: shellB, ttyNr: ttyDevice(tmux.paneTty(paneB)), tpgid: pid },
    "in pane B's session, leading its group, the foreground job of pane B's terminal",
  );

  await endCounter(tmux, paneB, pid, log);
});

test('^Z stops a restored shell job and its amber as one job of the shell; fg continues both, the job in the foreground again', async () => {
  const tmux = TmuxServer.start('job-stop');
  const [paneA, paneB] = [tmux.firstPane, tmux.newWindow('b')];
  await waitForPrompts(tmux, paneA, paneB);
  const log = join(tmux.dir, 'counter.log');
  tmux.type(paneA, `${targetPath('counter')} >>${log} 2>&1 </dev/null`);
  const pid = Number((await waitForFile(log, /^READY (\d+)$/m))[1]);
  const images = makeTmpDir('job-stop-img');
  amberOk(['dump', '-j', '-t', String(pid), '-D', images]);
  await until(`pid ${pid} to be gone after the dump`, () => procState(pid) === null);
  tmux.type(paneB, `bash ${restoreScript(tmux.dir, images)}`);
  await until(`pid ${pid} to be restored`, () => isAlive(pid));
  await tmux.waitForText(paneB, `Restored pid ${pid}`);
  assertRestoredByAmber(pid);
  const shellB = tmux.panePid(paneB);

  tmux.sendKeys(paneB, 'C-z');
  await tmux.waitForText(paneB, /Stopped\s+bash /);
  assert.equal(procState(pid), 'T', 'the job is stopped');
  assert.equal(jobStat(pid).tpgid, shellB, "the shell has its terminal again");
  tmux.type(paneB, 'fg');
  await until(`pid ${pid} to run again`, () => procState(pid) !== 'T');
  await until('the job to be the foreground again', () => jobStat(pid).tpgid === pid);

  await endCounter(tmux, paneB, pid, log);
});

test('a self-checking program reading its terminal, dumped with -j from outside and restored with -j in another pane, gets its keys and ^C there, twice', async () => {
  const tmux = TmuxServer.start('shelljob');
  const [paneA, paneB] = [tmux.firstPane, tmux.newWindow('b')];
  await waitForPrompts(tmux, paneA, paneB);
  const log = join(tmux.dir, 'shelljob.log');
  tmux.type(paneA, `${targetPath('shelljob')} ${log}`);
  const pid = Number((await waitForFile(log, /^READY (\d+)$/m))[1]);
  await tmux.waitForText(paneA, `shelljob ${pid} ready`);
  tmux.type(paneA, 'before');
  await tmux.waitForText(paneA, 'line: before');
  tmux.sendKeys(paneA, 'C-c');
  await tmux.waitForText(paneA, 'sigint 1');

  const images = makeTmpDir('shelljob-img');
  amberOk(['dump', '-j', '-t', String(pid), '-D', images]);
  await until(`pid ${pid} to be gone after the dump`, () => procState(pid) === null);
  // crit reads the outside terminal as CRIU's external tty, with the job's mode (no ICANON, no ECHO)
  const [outside] = critDecode(join(images, 'tty-info.img')).entries;
  assert.equal(outside.type, 'EXT_TTY');
  assert.equal(outside.termios.c_lflag & 0o12, 0, `c_lflag ${outside.termios.c_lflag.toString(8)}`);

  tmux.type(paneB, `bash ${restoreScript(tmux.dir, images)}`);
  await until(`pid ${pid} to be restored`, () => isAlive(pid));
  await tmux.waitForText(paneB, `Restored pid ${pid}`);
  assertRestoredByAmber(pid);
  // before it reads on, compare sees the job's new session (pane B's shell's) unless told it is a shell job
  const cmp = ['compare', '-t', String(pid), '-D', images];
  const plain = amber(cmp);
  assert.equal(plain.status, 1, describeAmber(cmp, plain));
  assert.match(plain.stdout, new RegExp(`session: expected ${tmux.panePid(paneA)}, found ${tmux.panePid(paneB)}`));
  assert.match(amberOk([...cmp, '-j']).stdout, new RegExp(`^pid ${pid} matches`));
  tmux.type(paneB, 'after');
  await tmux.waitForText(paneB, 'line: after');
  tmux.sendKeys(paneB, 'C-c');
  await tmux.waitForText(paneB, 'sigint 2');

  // again, from pane B back to pane A: the restored job is amber's child there, and amber's
  // wait ends with the job's SIGKILL (137) as the dump ends it
  const again = makeTmpDir('shelljob-img2');
  amberOk(['dump', '-j', '-t', String(pid), '-D', again]);
  await until(`pid ${pid} to be gone after the second dump`, () => procState(pid) === null);
  await tmux.waitForText(paneB, 'amber-exit=137');
  tmux.type(paneB, 'back');
  await tmux.waitForText(paneB, 'after=back', 10_000);
  tmux.type(paneA, `clear; bash ${restoreScript(tmux.dir, again, [], 'again.sh')}`);
  await until(`pid ${pid} to be restored again`, () => isAlive(pid));
  await tmux.waitForText(paneA, `Restored pid ${pid}`);
  assertRestoredByAmber(pid);
  tmux.type(paneA, 'third');
  await tmux.waitForText(paneA, 'line: third');
  tmux.sendKeys(paneA, 'C-c');
  await tmux.waitForText(paneA, 'sigint 3');
  tmux.type(paneA, 'q', false);
  const shown = await tmux.waitForText(paneA, /amber-exit=\d+/);
  const lines = readFileSync(log, 'utf8').split('\n');
  const checks = lines.slice(lines.findIndex((l) => l.startsWith('TTY ')));
  assert.ok(checks.includes('PASS') && !checks.some((l) => l.startsWith('FAIL')), `its own checks: ${checks.join(' | ')}\npane A:\n${shown}`);
  assert.equal(checks[0], `TTY ${tmux.paneTty(paneA)}`, "it ended on pane A's terminal");
  assert.match(shown, /amber-exit=0/);
  tmux.type(paneA, 'back');
  await tmux.waitForText(paneA, 'after=back', 10_000);
  await tmux.stop();
});

test('a -j restore with no terminal to give is refused in one line; one that fails once the job had the terminal kills the job and gives the terminal back', async () => {
  const tmux = TmuxServer.start('shelljob-fail');
  const [paneA, paneB] = [tmux.firstPane, tmux.newWindow('b')];
  await waitForPrompts(tmux, paneA, paneB);
  const log = join(tmux.dir, 'shelljob.log');
  tmux.type(paneA, `${targetPath('shelljob')} ${log}`);
  const pid = Number((await waitForFile(log, /^READY (\d+)$/m))[1]);
  await tmux.waitForText(paneA, `shelljob ${pid} ready`);
  const images = makeTmpDir('shelljob-fail-img');
  amberOk(['dump', '-j', '-t', String(pid), '-D', images]);
  await until(`pid ${pid} to be gone after the dump`, () => procState(pid) === null);

  // an amber with no terminal (a session of its own) has none to give the job: one line, nothing made
  const noTty = spawnSync('setsid', ['-w', process.execPath, cliEntry, 'restore', '-j', '-D', images], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.notEqual(noTty.status, 0);
  const errLines = noTty.stderr.trim().split('\n');
  assert.equal(errLines.length, 1, noTty.stderr);
  assert.match(errLines[0], new RegExp(`^amber: pid ${pid} had the outside terminal tty\\[[0-9a-f]+:[0-9a-f]+\\] \\(a shell job\\), but amber runs on no terminal`));
  assert.ok(!isAlive(pid), 'nothing of the job is left');
  if (procState(pid) === 'Z' && parentOf(pid) === process.pid) await reap(pid);

  // the fault comes at the very end, once the job is the foreground job (as its threads get their registers)
  tmux.type(paneB, `AMBER_FAULT=restore:resume-thread bash ${restoreScript(tmux.dir, images)}`);
  const shown = await tmux.waitForText(paneB, /amber-exit=\d+/);
  assert.match(shown, /amber: injected fault at restore:resume-thread/);
  assert.doesNotMatch(shown, /amber-exit=0/);
  tmux.type(paneB, 'back');
  await tmux.waitForText(paneB, 'after=back', 10_000);
  assert.ok(!isAlive(pid), 'nothing of the job is left');
  if (procState(pid) === 'Z' && parentOf(pid) === process.pid) await reap(pid); // an orphan of amber's: ours
  // (node itself puts its terminal's mode back when amber exits; releaseCallersMode does it for a restore run as a library)
  tmux.type(paneB, 'stty -a | tr " ;" "\\n\\n" | grep -xE -- "-?(icanon|echo)" | tr "\\n" " "; echo');
  await tmux.waitForText(paneB, /^icanon echo $/m);
  await tmux.stop();
});

test('vim editing a file, dumped with -j and restored into a smaller pane: it learns the new size, after ^L the buffer is there, more can be typed, :wq writes it all', async () => {
  const tmux = TmuxServer.start('vim');
  const [paneA, paneB] = [tmux.firstPane, tmux.newWindow('b')];
  tmux.tmux(['resize-window', '-t', paneB, '-x', '80', '-y', '24']);
  await waitForPrompts(tmux, paneA, paneB);
  assert.equal(tmux.tmux(['display-message', '-p', '-t', paneB, '#{pane_width}x#{pane_height}']).trim(), '80x24');
  const file = join(tmux.dir, 'notes.txt');
  tmux.type(paneA, `vim -u NONE -N -n ${file}`);
  await tmux.waitForText(paneA, 'notes.txt');
  const shellA = tmux.panePid(paneA);
  await until('vim to start under pane A', () => childrenOf(shellA).length === 1);
  const pid = childrenOf(shellA)[0];
  assert.match(readFileSync(`/proc/${pid}/comm`, 'utf8'), /^vim/);
  tmux.type(paneA, 'ifirst line typed before the dump', false);
  tmux.sendKeys(paneA, 'Escape');
  await tmux.waitForText(paneA, 'first line typed before the dump');

  const images = makeTmpDir('vim-img');
  amberOk(['dump', '-j', '-t', String(pid), '-D', images]);
  await until(`vim ${pid} to be gone after the dump`, () => procState(pid) === null);

  // amber's Restored line and vim's redraw on its SIGWINCH race for the screen: the line is
  // looked for in what the pane was sent, not in what it shows
  const paneBWrote = tmux.recordOutput(paneB);
  tmux.type(paneB, `bash ${restoreScript(tmux.dir, images)}`);
  await until(`vim ${pid} to be restored`, () => isAlive(pid));
  await paneBWrote(`Restored pid ${pid}`);
  assertRestoredByAmber(pid);
  tmux.sendKeys(paneB, 'C-l');
  await tmux.waitForText(paneB, 'first line typed before the dump');
  tmux.type(paneB, ":echo 'size ' . &columns . 'x' . &lines");
  await tmux.waitForText(paneB, 'size 80x24');
  tmux.type(paneB, 'osecond line typed after the restore', false);
  tmux.sendKeys(paneB, 'Escape');
  await tmux.waitForText(paneB, 'second line typed after the restore');
  tmux.type(paneB, ':wq');
  await tmux.waitForText(paneB, 'amber-exit=0');
  assert.equal(readFileSync(file, 'utf8'), 'first line typed before the dump\nsecond line typed after the restore\n');
  tmux.type(paneB, 'back');
  await tmux.waitForText(paneB, 'after=back', 10_000);
  await tmux.stop();
});

test('--inherit-fd fd[N]:tty[RDEV:DEV] hands a restored shell job (vim) another terminal than amber\'s: it draws there, in its own mode, and takes keys from there', async () => {
  const tmux = TmuxServer.start('vim-inherit');
  const [paneA, paneB, paneC] = [tmux.firstPane, tmux.newWindow('b'), tmux.newWindow('c')];
  for (const p of [paneA, paneB, paneC]) await tmux.waitForText(p, '$ ');
  const file = join(tmux.dir, 'handed.txt');
  tmux.type(paneA, `vim -u NONE -N -n ${file}`);
  await tmux.waitForText(paneA, 'handed.txt');
  const shellA = tmux.panePid(paneA);
  await until('vim to start under pane A', () => childrenOf(shellA).length === 1);
  const pid = childrenOf(shellA)[0];
  tmux.type(paneA, 'ityped in pane A', false);
  tmux.sendKeys(paneA, 'Escape');
  await tmux.waitForText(paneA, 'typed in pane A');
  const dumped = statSync(tmux.paneTty(paneA));
  const images = makeTmpDir('vim-inherit-img');
  amberOk(['dump', '-j', '-t', String(pid), '-D', images]);
  await until(`vim ${pid} to be gone after the dump`, () => procState(pid) === null);

  // pane C's shell gives way to a program that never reads: what is typed there goes to vim
  tmux.type(paneC, 'clear; exec sleep 100000');
  const key = ttyInheritKey(dumped.rdev, dumped.dev);
  const script = join(tmux.dir, 'inherit.sh');
  writeFileSync(script, `exec 3<>${tmux.paneTty(paneC)}\n"${process.execPath}" "${cliEntry}" restore -j -D "${images}" --inherit-fd 'fd[3]:${key}'\necho "amber-exit=$?"\n`);
  tmux.type(paneB, `bash ${script}`);
  await until(`vim ${pid} to be restored`, () => isAlive(pid));
  await tmux.waitForText(paneB, `Restored pid ${pid}`);
  assert.equal(readlinkSync(`/proc/${pid}/fd/0`), tmux.paneTty(paneC), 'vim is on the terminal handed in');
  const mode = spawnSync('stty', ['-F', tmux.paneTty(paneC), '-a'], { encoding: 'utf8' }).stdout.split(/[\s;]+/);
  assert.ok(mode.includes('-icanon') && mode.includes('-echo'), `the handed-in terminal is in vim's raw mode: ${mode.join(' ')}`);
  tmux.sendKeys(paneC, 'C-l');
  await tmux.waitForText(paneC, 'typed in pane A');
  tmux.type(paneC, 'otyped in pane C', false);
  tmux.sendKeys(paneC, 'Escape');
  await tmux.waitForText(paneC, 'typed in pane C');
  tmux.type(paneC, ':wq');
  await tmux.waitForText(paneB, 'amber-exit=0');
  assert.equal(readFileSync(file, 'utf8'), 'typed in pane A\ntyped in pane C\n');
  await tmux.stop();
});

test('a whole tmux server (a shell in a pane running a loop, no client) comes back: old contents, the loop goes on, send-keys and attach from another server work', async () => {
  const lower = holdPtys(8);
  const tmux = TmuxServer.start('server');
  const pane = tmux.firstPane;
  await tmux.waitForText(pane, '$ ');
  const tick = join(tmux.dir, 'tick');
  // one loop, in the shell itself: it counts into a file, and answers each line typed
  tmux.type(pane, `n=0; while :; do n=$((n+1)); echo $n >${tick}; if read -r -t 0.2 l; then echo "got:$l"; fi; done`);
  tmux.type(pane, 'before the dump');
  await tmux.waitForText(pane, 'got:before the dump');
  const server = tmux.pid;
  const tree = [server, ...childrenOf(server)];
  const ptyName = tmux.paneTty(pane);
  assert.equal(tree.length, 2, `the server and its pane's shell: ${tree.join(' ')}`);

  const images = makeTmpDir('tmux-img');
  try {
    amberOk(['dump', '-t', String(server), '-D', images]);
  } finally {
    lower.release();
  }
  await until('the server tree to be gone', () => tree.every((p) => procState(p) === null || procState(p) === 'Z'));
  for (const p of tree) if (procState(p) === 'Z' && parentOf(p) === process.pid) await reap(p);

  amberOk(['restore', '-D', images, '-d']);
  assert.ok(tree.every(isAlive), 'every task of the tree runs again');
  assert.equal(readlinkSync(`/proc/${tree[1]}/fd/0`), ptyName, "the pane's shell is on the pty it had (same index)");
  const shown = await tmux.waitForText(pane, 'got:before the dump');
  assert.match(shown, /\$ n=0; while/, "the pane's old contents");
  const n0 = Number(readFileSync(tick, 'utf8'));
  await until('the loop to go on', () => Number(readFileSync(tick, 'utf8')) > n0 + 3);
  tmux.type(pane, 'after the restore');
  await tmux.waitForText(pane, 'got:after the restore');

  const other = TmuxServer.start('attacher');
  const otherPane = other.firstPane;
  await other.waitForText(otherPane, '$ ');
  other.type(otherPane, `TMUX= tmux -S ${tmux.socket} attach`);
  await other.waitForText(otherPane, 'got:after the restore');
  tmux.type(pane, 'while attached');
  await other.waitForText(otherPane, 'got:while attached');
  other.sendKeys(otherPane, 'C-b', 'd');
  await other.waitForText(otherPane, '[detached');
  await other.stop();
  await tmux.stop();
});

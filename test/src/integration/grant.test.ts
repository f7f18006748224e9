import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readlinkSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ImageStore, type CoreEntry } from '@amber/core';
import { registerFsImages, type GhostFileEntry } from '@amber/plugin-fs/dist/images';
import {
  amber, assertOneLineError, rewriteImage, amberOk, cleanup, cliEntry, critDecode, describeAmber, isAlive, makeTmpDir, reap, startTarget, targetPath, verdict, type Target,
} from '../harness';

// A restore grants nothing the caller does not hold: files come back with their owners and as
// the task opens them, never with set-id bits amber made, and nothing is left when it fails.

after(cleanup);
registerFsImages();

const NOBODY = 65534;
const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const SUDO_NOBODY = { SUDO_UID: String(NOBODY), SUDO_GID: String(NOBODY) };

/** test/targets/bin/grant MODE ARG started as uid/gid 65534 through setpriv, in a scratch dir of its own. */
async function startAsNobody(mode: string, arg?: string): Promise<Target> {
  const workdir = makeTmpDir('grant');
  return startTarget('grant', [...AS_NOBODY, targetPath('grant'), mode, arg ?? workdir], { binary: '/usr/bin/setpriv', workdir, owner: NOBODY });
}

/** The fd of pid whose link ends in `name (deleted)`, stat'ed through /proc. */
function ghostFd(pid: number, name: string): { fd: number; uid: number; gid: number; mode: number } {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    if (!readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith(`/${name} (deleted)`)) continue;
    const st = statSync(`/proc/${pid}/fd/${fd}`);
    return { fd: Number(fd), uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
  }
  throw new Error(`pid ${pid} holds no unlinked ${name}`);
}

/** Names in dir other than the target's own log and pid file: what a restore may have left. */
function leftovers(t: Target): string[] {
  return readdirSync(t.workdir).filter((f) => !/^grant\.(log|pid)$/.test(f));
}

function ghostImage(dir: string): { store: ImageStore; name: string; entry: GhostFileEntry; blobs: Buffer[] } {
  const name = readdirSync(dir).find((f) => f.startsWith('ghost-file-'))!.replace(/\.img$/, '');
  const store = ImageStore.forRead(dir);
  const img = store.read<GhostFileEntry>('ghost-file', name);
  return { store, name, entry: img.entries[0], blobs: img.blobs.filter((b): b is Buffer => b !== undefined) };
}

test('an unlinked setuid file of a nobody process is dumped with its owner and comes back as its own, by root and through sudo', async () => {
  const t = await startAsNobody('ghost');
  for (const [round, env] of [['root', undefined], ['sudo -u nobody', SUDO_NOBODY]] as const) {
    const dir = makeTmpDir('grant-ghost');
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    await reap(t.pid);
    const ghostFile = readdirSync(dir).find((f) => f.startsWith('ghost-file-'))!;
    const dumped = critDecode(join(dir, ghostFile)).entries[0];
    assert.deepEqual([dumped.uid, dumped.gid, dumped.mode & 0o7777], [NOBODY, NOBODY, 0o4755], `${round}: the ghost image records the real owner and mode`);
    amberOk(['restore', '-D', dir, '-d'], env);
    const held = ghostFd(t.pid, 'setid-ghost');
    assert.deepEqual([held.uid, held.gid, held.mode], [NOBODY, NOBODY, 0o4755], `${round}: the fd's file is nobody's own, as dumped`);
    assert.deepEqual(leftovers(t), [], `${round}: no name of the re-created file is left`);
  }
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('an unlinked file that a set-gid directory gave a group its owner is not in comes back through sudo', async () => {
  const workdir = makeTmpDir('grant');
  const shared = join(workdir, 'shared');
  mkdirSync(shared);
  chownSync(shared, 0, 1); // group daemon, which nobody is not in
  chmodSync(shared, 0o2777);
  const t = await startTarget('grant', [...AS_NOBODY, targetPath('grant'), 'ghost', shared], { binary: '/usr/bin/setpriv', workdir, owner: NOBODY });
  const dir = makeTmpDir('grant-setgid');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  amberOk(['restore', '-D', dir, '-d'], SUDO_NOBODY);
  const held = ghostFd(t.pid, 'setid-ghost');
  assert.deepEqual([held.uid, held.gid], [NOBODY, 1], 'owner and the directory\'s group, as dumped');
  assert.deepEqual(readdirSync(shared), [], 'no name of the re-created file is left');
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('an image claiming a root-owned setuid ghost is refused through sudo, with one line and no file left', async () => {
  const t = await startAsNobody('ghost');
  const dir = makeTmpDir('grant-ghost-root');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  const g = ghostImage(dir);
  rewriteImage(g.store, 'ghost-file', g.name, [{ ...g.entry, uid: 0, gid: 0 }], { blobs: g.blobs });
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amber(args, { env: SUDO_NOBODY }), new RegExp(`pid ${t.pid} may not re-create the unlinked file ${t.workdir}/setid-ghost \\(owner 0:0\\) as its own user.*EPERM`));
  assert.equal(isAlive(t.pid), false, 'nothing was created');
  assert.deepEqual(leftovers(t), [], 'no file is left');
});

test('a restore failing while an unlinked file has its name removes it and everything else', async () => {
  const t = await startAsNobody('ghost');
  const dir = makeTmpDir('grant-ghost-fault');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  for (const point of ['restore:ghost', 'restore:resources']) {
    const args = ['restore', '-D', dir, '-d'];
    assertOneLineError(args, amber(args, { env: { AMBER_FAULT: point } }), /injected fault/);
    assert.equal(isAlive(t.pid), false, `${point}: no half-restored task is left`);
    await reap(t.pid).catch(() => undefined);
    assert.deepEqual(leftovers(t), [], `${point}: no file is left`);
  }
  amberOk(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

/** A file only root can read, in a directory anyone may enter. */
function rootOnlyFile(): string {
  const dir = makeTmpDir('grant-secret');
  chmodSync(dir, 0o755);
  const file = join(dir, 'secret');
  writeFileSync(file, 'top secret', { mode: 0o600 });
  return file;
}

test('files are opened with the task\'s credentials: through sudo a root-only file named in the image is refused, naming file and pid', async () => {
  const readable = join(makeTmpDir('grant-public'), 'public');
  chmodSync(join(readable, '..'), 0o755);
  writeFileSync(readable, 'public', { mode: 0o644 });
  const secret = rootOnlyFile();
  const t = await startAsNobody('hold', readable);
  const dir = makeTmpDir('grant-hold');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  // the image now says the process held the secret instead
  const store = ImageStore.forRead(dir);
  const files = store.read<{ reg?: { name: string } }>('files', 'files');
  const reg = files.entries.find((e) => e.reg?.name === readable);
  assert.ok(reg, 'the held file is in files.img');
  reg.reg!.name = secret;
  rewriteImage(store, 'files', 'files', files.entries);
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amber(args, { env: SUDO_NOBODY }), new RegExp(`pid ${t.pid} may not open ${secret} as its own user \\(uid 65534, gid 65534\\): EACCES`));
  assert.equal(isAlive(t.pid), false, 'nothing was created');
});

test('a process that opened a root-only file before dropping to nobody comes back when root restores it, and not through sudo', async () => {
  const secret = rootOnlyFile();
  const workdir = makeTmpDir('grant-drop');
  const t = await startTarget('grant', ['drop', secret], { workdir, owner: NOBODY });
  const dir = makeTmpDir('grant-drop-img');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amber(args, { env: SUDO_NOBODY }), new RegExp(`pid ${t.pid} may not open ${secret} as its own user`));
  assert.equal(isAlive(t.pid), false, 'nothing was created');
  await reap(t.pid).catch(() => undefined);
  amberOk(args);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
  assert.ok(v.lines.includes('HELD top secret'), v.lines.join(' | '));
});

test('supplementary groups in an image are checked against the user restoring through sudo', async () => {
  const t = await startAsNobody('ghost');
  const dir = makeTmpDir('grant-groups');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  const store = ImageStore.forRead(dir);
  const core = store.read<CoreEntry>('core', `core-${t.pid}`);
  core.entries[0].threadCore!.creds!.groups = [0];
  rewriteImage(store, 'core', `core-${t.pid}`, core.entries);
  const args = ['restore', '-D', dir, '-d'];
  assertOneLineError(args, amber(args, { env: SUDO_NOBODY }), new RegExp(`pid ${t.pid} would be in supplementary group 0, which you \\(uid 65534\\) are not in`));
  assert.equal(isAlive(t.pid), false, 'nothing was created');
  assert.deepEqual(leftovers(t), [], 'no file is left');
});

test('a package with an "amber" key under the current directory is never loaded', async () => {
  const project = makeTmpDir('grant-planted');
  const marker = join(project, 'planted-ran');
  const pkg = join(project, 'node_modules', 'amber-plugin-planted');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'amber-plugin-planted', main: 'index.js', amber: { plugin: 'index.js' } }));
  writeFileSync(join(pkg, 'index.js'), `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\nclass P { constructor() { this.name = 'planted'; this.phase = 'task-state'; } }\nmodule.exports = { default: P };\n`);
  // the current directory, and one below it (discovery used to walk up to /)
  const below = join(project, 'src');
  mkdirSync(below);
  const t = await startTarget('counter');
  for (const cwd of [project, below]) {
    const dir = makeTmpDir('grant-planted-img');
    for (const args of [['dump', '-t', String(t.pid), '-D', dir, '--leave-running'], ['compare', '-t', String(t.pid), '-D', dir], ['restore', '-D', dir, '-d', '--no-such-flag'], ['check']]) {
      const r = amber(args, { cwd });
      if (args[0] === 'dump' || args[0] === 'check') assert.equal(r.status, 0, describeAmber(args, r));
      assert.equal(existsSync(marker), false, `amber ${args.join(' ')} from ${cwd} ran the planted package`);
    }
  }
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('oclif user plugins named in $HOME are not loaded', async () => {
  const home = makeTmpDir('grant-home');
  const data = join(home, '.local', 'share', '@amber', 'cli');
  const marker = join(home, 'hook-ran');
  mkdirSync(join(data, 'node_modules', 'planted'), { recursive: true });
  writeFileSync(join(data, 'package.json'), JSON.stringify({ private: true, oclif: { schema: 1, plugins: [{ name: 'planted', type: 'user' }] }, dependencies: { planted: '1.0.0' } }));
  writeFileSync(join(data, 'node_modules', 'planted', 'package.json'), JSON.stringify({ name: 'planted', version: '1.0.0', main: 'index.js', oclif: { hooks: { init: './hook.js' } } }));
  writeFileSync(join(data, 'node_modules', 'planted', 'index.js'), '');
  writeFileSync(join(data, 'node_modules', 'planted', 'hook.js'), `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\nmodule.exports = async function () {};\n`);
  const r = amber(['check'], { env: { HOME: home } });
  assert.equal(r.status, 0, describeAmber(['check'], r));
  assert.equal(existsSync(marker), false, 'the init hook of a user plugin in $HOME ran');
});

/** amber run as uid/gid 65534 with only CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE (HOME stays root's). */
function amberWithTwoCaps(args: string[]): ReturnType<typeof amber> {
  const caps = '+checkpoint_restore,+sys_ptrace';
  const r = spawnSync('setpriv', [...AS_NOBODY, `--inh-caps=${caps}`, `--ambient-caps=${caps}`, process.execPath, cliEntry, ...args], {
    encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

test('a user with only CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE dumps and restores their own process (with an unlinked setuid file)', async () => {
  const t = await startAsNobody('ghost');
  for (let round = 1; round <= 2; round++) {
    const dir = join(t.workdir, `images-${round}`);
    const dump = ['dump', '-t', String(t.pid), '-D', dir];
    const d = amberWithTwoCaps(dump);
    assert.equal(d.status, 0, describeAmber(dump, d));
    assert.equal(d.stderr, '', `no warnings: ${describeAmber(dump, d)}`);
    await reap(t.pid);
    const restore = ['restore', '-D', dir, '-d'];
    const r = amberWithTwoCaps(restore);
    assert.equal(r.status, 0, describeAmber(restore, r));
    assert.equal(r.stderr, '', `no warnings: ${describeAmber(restore, r)}`);
    const held = ghostFd(t.pid, 'setid-ghost');
    assert.deepEqual([held.uid, held.gid, held.mode], [NOBODY, NOBODY, 0o4755], `round ${round}: the fd's file is nobody's own`);
    assert.deepEqual(leftovers(t).filter((n) => !n.startsWith('images-')), [], `round ${round}: no name of the re-created file is left`);
  }
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('without CAP_SYS_ADMIN a process under seccomp is refused with one line, before anything changes', async () => {
  const workdir = makeTmpDir('grant-seccomp');
  const t = await startTarget('seccomp', [...AS_NOBODY, targetPath('seccomp')], { binary: '/usr/bin/setpriv', workdir, owner: NOBODY });
  const args = ['dump', '-t', String(t.pid), '-D', join(workdir, 'images')];
  assertOneLineError(args, amberWithTwoCaps(args), new RegExp(`pid ${t.pid} runs under seccomp \\(mode 2\\): to dump it amber needs CAP_SYS_ADMIN`));
  assert.ok(isAlive(t.pid));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

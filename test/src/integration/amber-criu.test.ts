/**
 * amber-criu, driven with the argv lines the tools that call CRIU use: each runs as CRIU's would or
 * is refused in one line naming the flag (exit 1, the target untouched).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { translateCriuArgv } from '@amber/cli';
import {
  amber, cleanup, descendants, isAlive, makeTmpDir, procState, reap, repoRoot, startTarget, tracerOf, until, verdict, WORKDIR,
} from '../harness';

after(cleanup);

const CRIU_ENTRY = join(repoRoot, 'cli', 'bin', 'criu.js');

function amberCriu(args: string[], extraFd = false) {
  const r = spawnSync(process.execPath, [CRIU_ENTRY, ...args], {
    encoding: 'buffer', timeout: 120_000, killSignal: 'SIGKILL', stdio: ['ignore', 'pipe', 'pipe', ...(extraFd ? ['pipe' as const] : [])],
  });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), fd3: extraFd ? (r.output[3] as Buffer | null) : null };
}

function refusedInOneLine(args: string[], flag: RegExp): void {
  const r = amberCriu(args);
  assert.equal(r.status, 1, `amber-criu ${args.join(' ')}: exit ${r.status}, ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], /^amber-criu: /);
  assert.match(lines[0], flag);
}

test("--version in CRIU's format, with amber named after it", () => {
  const r = amberCriu(['--version']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Version: 4\.2\nGitID: amber-\d+\.\d+\.\d+\n$/);
});

test("a script's lines (CRIU's test/mounts/run.sh) dump and restore; zdtm's restore line restores; logs go into the images directory", async () => {
  const t = await startTarget('interop', [WORKDIR]);
  const dir = makeTmpDir('amber-criu');
  // criu dump -D dump -o dump.log -t $pid -v4
  let r = amberCriu(['dump', '-D', dir, '-o', 'dump.log', '-t', String(t.pid), '-v4']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'dump.log')), 'a relative -o lands in the images directory');
  assert.match(readFileSync(join(dir, 'dump.log'), 'utf8'), /\S/, '-v4 writes debug lines into it');
  assert.equal((await reap(t.pid)).signal, 9);
  // zdtm: restore --log-file restore.log --images-dir DIR --verbosity=4 --restore-detached, with
  // --status-fd N when it waits for a zero byte
  r = amberCriu(['restore', '--log-file', 'restore.log', '--images-dir', dir, '--verbosity=4', '--restore-detached', '--status-fd', '3'], true);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual([...(r.fd3 ?? [])], [0], '--status-fd got one zero byte');
  assert.ok(existsSync(join(dir, 'restore.log')));
  assert.ok(isAlive(t.pid));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test("zdtm's dump and restore lines (test/zdtm.py, h flavour) dump and restore, with CRIU's default config files skipped", async () => {
  const t = await startTarget('interop', [WORKDIR]);
  const dir = makeTmpDir('amber-criu-zdtm');
  const pidfile = join(dir, 'test.pid');
  const pid = String(t.pid);
  // zdtm: criu dump --no-default-config --log-file dump.log --images-dir DIR --verbosity=4 --tree PID
  //   (test opts) --pidfile PIDFILE --timeout 10
  let r = amberCriu(['dump', '--no-default-config', '--log-file', 'dump.log', '--images-dir', dir, '--verbosity=4', '--tree', pid, '--pidfile', pidfile, '--timeout', '10']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'inventory.img')));
  assert.equal((await reap(t.pid)).signal, 9);
  // the sibling variant (zdtm --sibling) is refused, nothing restored
  refusedInOneLine(['restore', '--no-default-config', '--log-file', 'restore.log', '--images-dir', dir, '--verbosity=4', '--restore-sibling', '--pidfile', pidfile, '--restore-detached'], /--restore-sibling: amber restores the root as its own child/);
  assert.equal(isAlive(t.pid), false);
  // zdtm: criu restore --no-default-config --log-file restore.log --images-dir DIR --verbosity=4 --pidfile PIDFILE --restore-detached
  r = amberCriu(['restore', '--no-default-config', '--log-file', 'restore.log', '--images-dir', dir, '--verbosity=4', '--pidfile', pidfile, '--restore-detached']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(pidfile, 'utf8').trim(), pid, 'the restored root pid in --pidfile');
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
  // zdtm's feature probe: criu check --no-default-config -verbosity=0 --feature NAME
  assert.equal(amberCriu(['check', '--no-default-config', '-verbosity=0', '--feature', 'kcmp_epoll']).status, 0);
});

test('--timeout (zdtm passes 10): a tree that cannot freeze in time (a vfork parent) fails the dump in one line within the limit, left running', async () => {
  // the vfork child sleeps 8 s: until then its parent does not stop for ptrace
  const t = await startTarget('vfork_wait', ['8']);
  const dir = makeTmpDir('amber-criu-timeout');
  assert.ok(await until(() => procState(t.pid) === 'D', 5_000), 'the parent waits in vfork');
  const started = Date.now();
  const c = amberCriu(['dump', '-D', dir, '-t', String(t.pid), '--timeout', '1']);
  assert.equal(c.status, 1, c.stderr);
  assert.equal(c.stderr.trim(), `amber: pid ${t.pid}: the tree was not frozen within 1 s (--timeout): pid ${t.pid} (vfork_wait, state D) did not stop; it was left running`);
  const took = Date.now() - started;
  assert.ok(took < 6_000, `failed soon after its limit (${took} ms)`);
  assert.equal(existsSync(join(dir, 'inventory.img')), false, 'no image');
  for (const p of descendants(t.pid)) {
    assert.equal(tracerOf(p), 0, `pid ${p} is not traced once amber is gone`);
    assert.ok(procState(p) !== 't' && procState(p) !== 'T', `pid ${p} is not stopped`);
  }
  // the vfork ends on time and the parent sees its child exit 7, as if nothing happened
  const v = await verdict(t, 20_000);
  assert.ok(v.passed, v.lines.join(' | '));
});

test("lxc-checkpoint's dump and restore lines (LXC src/lxc/criu.c) are refused in one line naming the flag amber lacks, the target running", async () => {
  const t = await startTarget('interop', [WORKDIR]);
  const dir = makeTmpDir('amber-criu-refused');
  const pid = String(t.pid);
  const lxcCommon = ['--tcp-established', '--file-locks', '--link-remap', '--manage-cgroups=full', '--ext-mount-map', 'auto', '--enable-external-sharing', '--enable-external-masters', '--enable-fs', 'hugetlbfs', '--enable-fs', 'tracefs', '-D', dir];
  // dump: ... -o DIR/dump.log --cgroup-root NAME:PATH -vvvvvv -t PID --skip-in-flight --freeze-cgroup PATH --leave-running
  refusedInOneLine(['dump', ...lxcCommon, '-o', join(dir, 'dump.log'), '--cgroup-root', 'memory:/lxc/ct', '-vvvvvv', '-t', pid, '--skip-in-flight', '--freeze-cgroup', '/sys/fs/cgroup/freezer/lxc/ct', '--leave-running'], /--cgroup-root: amber does not dump or restore cgroup membership/);
  // without LXC's cgroup paths, its cgroup mode is what is refused
  refusedInOneLine(['dump', ...lxcCommon, '-o', join(dir, 'dump.log'), '-t', pid, '--leave-running'], /--manage-cgroups=full: amber does not dump or restore cgroup membership \(only --manage-cgroups=ignore/);
  // restore: ... -o DIR/restore.log --root ROOTFS --restore-detached --restore-sibling
  const rootfs = makeTmpDir('amber-criu-rootfs');
  refusedInOneLine(['restore', ...lxcCommon.filter((w) => w !== '--manage-cgroups=full'), '-o', join(dir, 'restore.log'), '--root', rootfs, '--restore-detached'], new RegExp(`--root: amber restores into its own root only \\(${rootfs} is not /\\)`));
  refusedInOneLine(['dump', '-D', dir, '-t', pid, '--external', 'tty[88:0]'], /--external: amber has no external resources yet/);
  refusedInOneLine(['dump', '-D', dir, '-t', pid, '--no-such-flag'], /--no-such-flag: unknown/);
  refusedInOneLine(['page-server', '-D', dir], /command page-server is not supported/);
  assert.ok(isAlive(t.pid), 'nothing was dumped');
  assert.equal(existsSync(join(dir, 'inventory.img')), false);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test("LXC's mount options and --manage-cgroups=ignore change nothing for a tree in amber's mount namespace: accepted; an image with mounts is refused", async () => {
  const t = await startTarget('interop', [WORKDIR]);
  const dir = makeTmpDir('amber-criu-mounts');
  const mountOpts = ['--ext-mount-map', 'auto', '--enable-external-sharing', '--enable-external-masters', '--enable-fs', 'hugetlbfs', '--enable-fs', 'tracefs'];
  let r = amberCriu(['dump', ...mountOpts, '--manage-cgroups=ignore', '--file-locks', '--link-remap', '-D', dir, '-t', String(t.pid)]);
  assert.equal(r.status, 0, r.stderr);
  await reap(t.pid);
  // an image of a tree with its own mount namespace, as CRIU writes it: what would matter is refused
  writeFileSync(join(dir, 'mountpoints-12.img'), '');
  refusedInOneLine(['restore', ...mountOpts, '-D', dir, '-d', '--root', '/'], /--ext-mount-map: the image holds a mount namespace \(mountpoints-12\.img\), which amber does not restore/);
  assert.equal(isAlive(t.pid), false);
  rmSync(join(dir, 'mountpoints-12.img'));
  r = amberCriu(['restore', ...mountOpts, '-D', dir, '-d', '--root', '/']);
  assert.equal(r.status, 0, r.stderr);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('a tree in a mount namespace of its own: the mount options are refused, naming the flag and the pid, nothing touched', async () => {
  const dir = makeTmpDir('amber-criu-mntns');
  const out = join(dir, 'pid');
  // a process of this test's own, in a new mount namespace, parented by init
  const sh = spawnSync('setsid', ['-f', 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', `echo $$ > ${out}; exec sleep 60`], { stdio: 'ignore' });
  assert.equal(sh.status, 0);
  assert.ok(await until(() => existsSync(out) && readFileSync(out, 'utf8').trim() !== '', 5_000), 'the namespaced shell wrote its pid');
  const pid = Number(readFileSync(out, 'utf8').trim());
  try {
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'));
    refusedInOneLine(['dump', '--enable-external-masters', '-D', dir, '-t', String(pid)], new RegExp(`--enable-external-masters: pid ${pid} is in a mount namespace of its own`));
    assert.ok(isAlive(pid));
    assert.equal(tracerOf(pid), 0);
  } finally {
    // ours: started above, and still the sleep we exec'd
    if (isAlive(pid) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') process.kill(pid, 'SIGKILL');
  }
});

test("CRIU's configuration files: CRIU_CONFIG_FILE's options apply (here leave-running), and the command line wins", async () => {
  const t = await startTarget('interop', [WORKDIR]);
  const dir = makeTmpDir('amber-criu-config');
  const conf = join(dir, 'amber.conf');
  writeFileSync(conf, '# as criu(8) writes them\nleave-running\nlog-file "config dump.log"   # a quoted value\n');
  const r = spawnSync(process.execPath, [CRIU_ENTRY, 'dump', '-D', dir, '-t', String(t.pid)], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CRIU_CONFIG_FILE: conf } });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(isAlive(t.pid), 'leave-running from the file: the target runs on');
  assert.ok(existsSync(join(dir, 'config dump.log')), 'log-file from the file, into the images directory');
  // a bad line: one line naming the file and line, nothing done
  writeFileSync(conf, 'leave-running\n--timeout 5\n');
  const bad = spawnSync(process.execPath, [CRIU_ENTRY, 'dump', '-D', makeTmpDir('amber-criu-config2'), '-t', String(t.pid)], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CRIU_CONFIG_FILE: conf } });
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim(), `amber-criu: ${conf}:2: --timeout: options are written without dashes`);
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('check --feature NAME exits 0 when amber can use it, 1 with one line otherwise', () => {
  // zdtm asks: criu check --feature mem_dirty_track (and userns, lazy_pages ...)
  const r = amberCriu(['check', '--feature', 'kcmp_epoll']);
  assert.equal(r.status, 0, r.stderr);
  // as amber check sees this kernel: PAGEMAP_SCAN or soft-dirty
  const rows = JSON.parse(amber(['check', '--json']).stdout) as { name: string; present: boolean }[];
  const tracks = rows.some((f) => (f.name === 'PAGEMAP_SCAN (Linux 6.7)' || f.name === 'soft-dirty bits') && f.present);
  const dirty = amberCriu(['check', '--feature', 'mem_dirty_track']);
  assert.equal(dirty.status, tracks ? 0 : 1, dirty.stderr);
  refusedInOneLine(['check', '--feature', 'lazy_pages'], /lazy_pages: amber has no lazy pages/);
  refusedInOneLine(['check', '--feature', 'userns'], /userns: amber does not dump user namespaces/);
  refusedInOneLine(['check', '--feature', 'no_such'], /no_such: amber knows/);
});

test('CRIU options map to amber flags of the same meaning, or are accepted where amber already does that', () => {
  const run = (argv: string[]) => {
    const c = translateCriuArgv(argv);
    assert.equal(c.kind, 'run', JSON.stringify(c));
    return c.kind === 'run' ? c.argv : [];
  };
  assert.deepEqual(run(['dump', '-t', '7', '-D', '/d', '--file-locks', '--link-remap', '--no-default-config', '--tcp-established', '-R']), ['dump', '-t', '7', '-D', '/d', '--tcp-established', '--leave-running', '--timeout', '10'], "CRIU's default --timeout");
  assert.deepEqual(run(['pre-dump', '--tree', '7', '-D', '/d/2', '--prev-images-dir', '../1', '--track-mem', '--pre-dump-mode=splice']), ['pre-dump', '-t', '7', '-D', '/d/2', '--prev-images-dir', '../1', '--track-mem', '--timeout', '10']);
  assert.deepEqual(run(['restore', '-D', '/d', '-W', '/w', '-o', 'r.log', '-vvvv', '-d', '--pidfile', '/p']), ['restore', '-D', '/d', '-d', '--pidfile', '/p', '-o', '/w/r.log', '-v']);
  assert.deepEqual(run(['check', '--all']), ['check']);
  assert.deepEqual(run(['dump', '-t', '7', '-D', '/d', '-j', '--timeout', '3']), ['dump', '-t', '7', '-D', '/d', '-j', '--timeout', '3']);
  assert.deepEqual(run(['dump', '-t', '7', '-D', '/d', '--skip-in-flight', '--timeout=4', '--manage-cgroups=ignore']), ['dump', '-t', '7', '-D', '/d', '--skip-in-flight', '--timeout', '4']);
  assert.deepEqual(run(['restore', '-D', '/d', '--root', '/', '-v0']), ['restore', '-D', '/d'], '--root / is amber\'s own root; -v0 is quiet');
  assert.deepEqual(run(['restore', '-D', '/d', '--shell-job']), ['restore', '-D', '/d', '-j']);
  const c = translateCriuArgv(['restore', '-D', '/d', '--inherit-fd', 'fd[3]:pipe:[1]', '--status-fd', '5']);
  assert.deepEqual(c, { kind: 'run', argv: ['restore', '-D', '/d', '--inherit-fd', 'fd[3]:pipe:[1]'], statusFd: 5 });
});

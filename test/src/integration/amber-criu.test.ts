/**
 * amber-criu, driven with the argv lines the tools that call CRIU use: each runs as CRIU's would or
 * is refused in one line naming the flag (exit 1, the target untouched).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { translateCriuArgv } from '@amber/cli';
import { amber, cleanup, isAlive, makeTmpDir, reap, repoRoot, startTarget, verdict, WORKDIR } from '../harness';

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

test("zdtm's and lxc-checkpoint's dump lines are refused in one line naming the flag amber lacks, leaving the target running", async () => {
  const t = await startTarget('interop', [WORKDIR]);
  const dir = makeTmpDir('amber-criu-refused');
  const pid = String(t.pid);
  // zdtm.py: --log-file dump.log --images-dir DIR --verbosity=4 --tree PID --timeout 10
  refusedInOneLine(['dump', '--log-file', 'dump.log', '--images-dir', dir, '--verbosity=4', '--tree', pid, '--timeout', '10'], /--timeout: amber does not time out a freeze/);
  // the flags LXC adds (issue 15): cgroups and mounts amber does not handle
  refusedInOneLine(['dump', '--tcp-established', '--file-locks', '--link-remap', '--manage-cgroups=full', '--ext-mount-map', 'auto', '--enable-external-masters', '-D', dir, '-t', pid], /--manage-cgroups: /);
  refusedInOneLine(['dump', '-D', dir, '-t', pid, '--external', 'tty[88:0]'], /--external: amber has no external resources yet/);
  refusedInOneLine(['dump', '-D', dir, '-t', pid, '--no-such-flag'], /--no-such-flag: unknown/);
  refusedInOneLine(['page-server', '-D', dir], /command page-server is not supported/);
  assert.ok(isAlive(t.pid), 'nothing was dumped');
  assert.equal(existsSync(join(dir, 'inventory.img')), false);
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
  assert.deepEqual(run(['dump', '-t', '7', '-D', '/d', '--file-locks', '--link-remap', '--no-default-config', '--tcp-established', '-R']), ['dump', '-t', '7', '-D', '/d', '--tcp-established', '--leave-running']);
  assert.deepEqual(run(['pre-dump', '--tree', '7', '-D', '/d/2', '--prev-images-dir', '../1', '--track-mem', '--pre-dump-mode=splice']), ['pre-dump', '-t', '7', '-D', '/d/2', '--prev-images-dir', '../1', '--track-mem']);
  assert.deepEqual(run(['restore', '-D', '/d', '-W', '/w', '-o', 'r.log', '-vvvv', '-d', '--pidfile', '/p']), ['restore', '-D', '/d', '-d', '--pidfile', '/p', '-o', '/w/r.log', '-v']);
  assert.deepEqual(run(['check', '--all']), ['check']);
  assert.deepEqual(run(['dump', '-t', '7', '-D', '/d', '-j']), ['dump', '-t', '7', '-D', '/d', '-j']);
  assert.deepEqual(run(['restore', '-D', '/d', '--shell-job']), ['restore', '-D', '/d', '-j']);
  const c = translateCriuArgv(['restore', '-D', '/d', '--inherit-fd', 'fd[3]:pipe:[1]', '--status-fd', '5']);
  assert.deepEqual(c, { kind: 'run', argv: ['restore', '-D', '/d', '--inherit-fd', 'fd[3]:pipe:[1]'], statusFd: 5 });
});

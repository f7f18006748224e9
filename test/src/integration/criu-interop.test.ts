/**
 * Images both ways with CRIU 4.x: CRIU dumps and amber restores, amber dumps and CRIU restores, for
 * one process and for a small tree (test/targets/interop.c); the target checks its own state.
 * They run where a CRIU 4.x binary is found (CRIU_BIN, else `criu` on PATH if it says 4.x) and
 * are reported as skipped otherwise. CRIU_CRIT names CRIU 4.x's crit, for the decoding test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { decodeImageFile, kill, SIG } from '@amber/core';
import '@amber/plugin-fs'; // ghost-file.img's schema
import {
  amber, amberOk, assertOneLineError, cleanup, critDecode, descendants, isAlive, makeTmpDir, parentOf, procState, reap, startTarget, verdict, WORKDIR, type Target,
} from '../harness';

const leftovers = new Set<number>();

after(async () => {
  // a tree restored halfway: children are ours (we are their subreaper) once their root is gone
  for (const pid of leftovers) {
    if (isAlive(pid) && parentOf(pid) === process.pid) {
      kill(pid, SIG.KILL);
      await reap(pid).catch(() => undefined);
    }
  }
  await cleanup();
});

function findCriu(): { bin?: string; skip: string | false } {
  const bin = process.env.CRIU_BIN ?? 'criu';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  const m = /Version:\s*(\d+)\.(\d+)/.exec(r.stdout ?? '');
  if (!m) return { skip: `no CRIU binary (${bin} --version: ${r.error?.message ?? `exit ${r.status}`}); set CRIU_BIN to a CRIU 4.x` };
  if (Number(m[1]) < 4) return { skip: `${bin} is CRIU ${m[1]}.${m[2]}: these tests need CRIU 4.x (set CRIU_BIN)` };
  return { bin, skip: false };
}

const criu = findCriu();

/** Runs CRIU; on failure, the assertion carries its log's errors. */
function criuOk(args: string[], dir: string, log: string): void {
  const r = spawnSync(criu.bin!, [...args, '-D', dir, '-o', log, '-v4'], { encoding: 'utf8', timeout: 60_000 });
  const errors = existsSync(join(dir, log)) ? readFileSync(join(dir, log), 'utf8').split('\n').filter((l) => / Error /.test(l)).slice(-5) : [];
  assert.equal(r.status, 0, `criu ${args.join(' ')} -> exit ${r.status}\n${r.stderr}\n${errors.join('\n')}`);
}

async function startInterop(tree: boolean, mode = tree ? 'tree' : ''): Promise<{ t: Target; pids: number[] }> {
  const t = await startTarget('interop', mode ? [WORKDIR, mode] : [WORKDIR]);
  const pids = descendants(t.pid);
  assert.equal(pids.length, tree ? 3 : 1, `interop ${mode} has ${pids.length} processes`);
  for (const pid of pids) leftovers.add(pid);
  return { t, pids };
}

/** The dumped tree is gone: every process killed and reaped, so their pids are free again. */
async function gone(pids: number[]): Promise<void> {
  for (const pid of pids) {
    const exit = await reap(pid);
    assert.equal(exit.signal, 9, `pid ${pid} was killed by the dump (${exit.text})`);
  }
}

async function passes(t: Target, pids: number[]): Promise<void> {
  for (const pid of pids) assert.ok(isAlive(pid), `pid ${pid} is back`);
  const v = await verdict(t);
  assert.ok(v.passed, `interop's own checks: ${v.lines.join(' | ')}`);
}

for (const tree of [false, true]) {
  const what = tree ? 'a tree (two children, a thread, a pipe, a file at an offset)' : 'a single process';

  test(`CRIU 4.x dumps ${what}, amber restores it and compare finds it as dumped`, { skip: criu.skip }, async () => {
    const { t, pids } = await startInterop(tree);
    const dir = makeTmpDir('criu-dump');
    criuOk(['dump', '-t', String(t.pid)], dir, 'dump.log');
    await gone(pids);
    amberOk(['restore', '-D', dir, '-d']);
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
    amberOk(['show', dir]);
    await passes(t, pids);
  });

  test(`amber dumps ${what}, CRIU 4.x restores it`, { skip: criu.skip }, async () => {
    const { t, pids } = await startInterop(tree);
    const dir = makeTmpDir('amber-dump');
    amberOk(['dump', '-t', String(t.pid), '-D', dir]);
    await gone(pids);
    criuOk(['restore', '-d'], dir, 'restore.log');
    amberOk(['compare', '-t', String(t.pid), '-D', dir]);
    await passes(t, pids);
  });
}

test('amber dumps shared anonymous memory (shmem.img, pagemap-shmem-N), CRIU 4.x restores its contents', { skip: criu.skip }, async () => {
  const { t, pids } = await startInterop(false, 'shm');
  const dir = makeTmpDir('amber-dump-shm');
  amberOk(['dump', '-t', String(t.pid), '-D', dir]);
  await gone(pids);
  criuOk(['restore', '-d'], dir, 'restore.log');
  await passes(t, pids);
});

test('CRIU 4.x dumps shared anonymous memory (as a memfd named /dev/zero): amber restores it as shared anonymous memory, its pattern intact', { skip: criu.skip }, async () => {
  const { t, pids } = await startInterop(false, 'shm');
  const dir = makeTmpDir('criu-dump-shm');
  criuOk(['dump', '-t', String(t.pid)], dir, 'dump.log');
  assert.ok(existsSync(join(dir, 'memfd.img')), 'CRIU wrote the area as a memfd');
  await gone(pids);
  amberOk(['restore', '-D', dir, '-d']);
  const shared = readFileSync(`/proc/${t.pid}/maps`, 'utf8').split('\n').filter((l) => / rw-s /.test(l));
  assert.equal(shared.length, 1, shared.join('\n'));
  assert.match(shared[0], /\/dev\/zero \(deleted\)$/, 'shared anonymous memory again, as the program made it');
  amberOk(['compare', '-t', String(t.pid), '-D', dir]);
  await passes(t, pids);
});

test("CRIU 4.x dumps two unlinked open files, a small one whole and a sparse one as chunks: amber restores both, holes and sizes as they were", { skip: criu.skip }, async () => {
  const t = await startTarget('ghosts', [WORKDIR]);
  leftovers.add(t.pid);
  const dir = makeTmpDir('criu-dump-ghosts');
  criuOk(['dump', '-t', String(t.pid)], dir, 'dump.log');
  const ghosts = readdirSync(dir).filter((n) => n.startsWith('ghost-file-'));
  assert.equal(ghosts.length, 2, `two ghost files: ${ghosts.join(' ')}`);
  const chunked = ghosts.filter((g) => (decodeImageFile(join(dir, g)).entries[0] as { chunks?: boolean }).chunks === true);
  assert.equal(chunked.length, 1, 'CRIU kept the big one as chunks');
  await gone([t.pid]);
  amberOk(['restore', '-D', dir, '-d']);
  await passes(t, [t.pid]);
});

const crit4 = process.env.CRIU_CRIT;

test("CRIU 4.x's crit decodes every image amber writes, with the page counts amber wrote", { skip: crit4 ? false : 'CRIU_CRIT (a CRIU 4.x crit command) is not set' }, async () => {
  const { t, pids } = await startInterop(true);
  const dir = makeTmpDir('crit4');
  amberOk(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.img') && !n.startsWith('pages-'))) {
    const r = spawnSync(crit4!, ['decode', '-i', join(dir, f)], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, `${crit4} decode -i ${f}: ${r.stderr}`);
    if (!f.startsWith('pagemap-')) continue;
    // CRIU 4.x reads nr_pages from its 64-bit field, Debian's 3.17 from the old one: both are there
    const wide = (JSON.parse(r.stdout) as { entries: { nr_pages?: number }[] }).entries.slice(1).map((e) => e.nr_pages);
    const old = critDecode(join(dir, f)).entries.slice(1).map((e) => e.nr_pages as number);
    assert.ok(old.every((n) => n > 0), `${f}: crit 3.17 sees page counts`);
    assert.deepEqual(wide, old, `${f}: both crits see the same page counts`);
  }
  await passes(t, pids);
});

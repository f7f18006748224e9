import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { kill, SIG } from '@amber/core';
import { amber, cleanup, describeAmber, isAlive, makeTmpDir, readLog, reap, sleep, startTarget, verdict, type Target, amberOk, critDecode } from '../harness';

after(cleanup);

const MB = 256;
const PAGES = (MB << 20) / 4096;

const run = amberOk;

const crit = critDecode;

/** SIGUSR2: memhog rewrites 1% of its pages; waits for its "DIRTIED <round>". */
async function dirty(t: Target, round: number): Promise<void> {
  kill(t.pid, SIG.USR2);
  const deadline = Date.now() + 10_000;
  while (!new RegExp(`^DIRTIED ${round} `, 'm').test(readLog(t))) {
    assert.ok(Date.now() < deadline, `memhog did not acknowledge round ${round}: ${readLog(t)}`);
    await sleep(10);
  }
}

function pagesWritten(dir: string): number {
  return statSync(join(dir, 'pages-1.img')).size / 4096;
}

const trackerFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).filter((fd) => {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[userfaultfd]';
  } catch {
    return false;
  }
});

const uffdVmas = (pid: number) => readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n').filter((l) => l.startsWith('VmFlags:') && / uw\b/.test(l)).length;

async function restoreAndVerify(t: Target, dir: string): Promise<void> {
  await reap(t.pid);
  run(['restore', '-D', dir, '-d']);
  assert.ok(isAlive(t.pid), `pid ${t.pid} is back`);
  assert.deepEqual(trackerFds(t.pid), [], 'the restored process has no tracking userfaultfd');
  assert.equal(uffdVmas(t.pid), 0, 'no VMA of the restored process is registered with a userfaultfd');
  const v = await verdict(t, 30_000);
  assert.ok(v.passed, `memhog's own check of all its memory: ${v.lines.join(' | ')}`);
}

test('pre-dump, 1% of the pages dirtied, dump --prev-images-dir writes about 1% and restores all memory', async () => {
  const t = await startTarget('memhog', [String(MB)], { timeoutMs: 60_000 });
  const base = makeTmpDir('predump-1');
  const d1 = join(base, '1');
  const d2 = join(base, '2');
  const pre = run(['pre-dump', '-t', String(t.pid), '-D', d1]);
  assert.match(pre.stdout, /left running/);
  assert.ok(isAlive(t.pid), 'a pre-dump leaves the process running');
  assert.ok(pagesWritten(d1) >= PAGES, `the first pre-dump holds all ${PAGES} pages (${pagesWritten(d1)})`);
  assert.equal(trackerFds(t.pid).length, 1, 'tracking userfaultfd parked in the task');
  assert.ok(uffdVmas(t.pid) > 0, 'VMAs registered for write-protect tracking');
  // the fd table does not count amber's own fd: compare sees the task as dumped
  run(['compare', '-t', String(t.pid), '-D', d1]);

  await dirty(t, 1);
  const r = run(['dump', '-t', String(t.pid), '-D', d2, '--prev-images-dir', '../1', '--track-mem']);
  const written = pagesWritten(d2);
  assert.ok(written >= PAGES / 100, `at least the ${PAGES / 100} dirtied pages were written (${written})`);
  assert.ok(written < PAGES * 0.03, `only about 1% of ${PAGES} pages written, not ${written}`);
  assert.match(r.stdout, /pages in parent \d+/);
  assert.equal(readlinkSync(join(d2, 'parent')), '../1');

  const pm = crit(join(d2, `pagemap-${t.pid}.img`)).entries.slice(1) as { nr_pages: number; flags: number }[];
  const sum = (flag: number) => pm.filter((e) => e.flags === flag).reduce((n, e) => n + e.nr_pages, 0);
  assert.equal(sum(4), written, 'PRESENT entries are the pages file');
  assert.ok(sum(1) > PAGES * 0.95, `PARENT entries cover the rest (${sum(1)})`);

  await restoreAndVerify(t, d2);
});

test('two pre-dumps in a chain, then the final dump; restore follows the chain', async () => {
  const t = await startTarget('memhog', [String(MB)], { timeoutMs: 60_000 });
  const base = makeTmpDir('predump-chain');
  run(['pre-dump', '-t', String(t.pid), '-D', join(base, '1')]);
  await dirty(t, 1);
  run(['pre-dump', '-t', String(t.pid), '-D', join(base, '2'), '--prev-images-dir', '../1']);
  assert.ok(pagesWritten(join(base, '2')) < PAGES * 0.03, `second pre-dump: ${pagesWritten(join(base, '2'))} pages`);
  await dirty(t, 2);
  run(['dump', '-t', String(t.pid), '-D', join(base, '3'), '--prev-images-dir', join(base, '2'), '--track-mem']);
  assert.ok(pagesWritten(join(base, '3')) < PAGES * 0.03, `final dump: ${pagesWritten(join(base, '3'))} pages`);
  // pages of round 1 untouched by round 2 come from 2, the initial pattern from 1
  await restoreAndVerify(t, join(base, '3'));
});

test('a failed final dump leaves the target running with its tracking; the next dump is still incremental', async () => {
  const t = await startTarget('memhog', [String(MB)], { timeoutMs: 60_000 });
  const base = makeTmpDir('predump-fail');
  // a failed pre-dump arms nothing
  const failedPre = amber(['pre-dump', '-t', String(t.pid), '-D', join(base, '0')], { env: { AMBER_FAULT: 'dump:after-mm' } });
  assert.notEqual(failedPre.status, 0, describeAmber(['pre-dump'], failedPre));
  assert.ok(isAlive(t.pid));
  assert.deepEqual(trackerFds(t.pid), [], 'no tracking left by a failed pre-dump');

  run(['pre-dump', '-t', String(t.pid), '-D', join(base, '1')]);
  await dirty(t, 1);
  for (const point of ['dump:after-mm', 'dump:after-fs']) {
    const args = ['dump', '-t', String(t.pid), '-D', join(base, '2'), '--prev-images-dir', '../1', '--track-mem'];
    const r = amber(args, { env: { AMBER_FAULT: point } });
    assert.notEqual(r.status, 0, describeAmber(args, r));
    assert.match(r.stderr, /injected fault/);
    assert.ok(isAlive(t.pid), `target running after a fault at ${point}`);
    assert.equal(trackerFds(t.pid).length, 1, `tracking still in place after a fault at ${point}`);
    assert.ok(!existsSync(join(base, '2', 'inventory.img')), 'the failed dump is not a complete image set');
  }
  await dirty(t, 2);
  run(['dump', '-t', String(t.pid), '-D', join(base, '2'), '--prev-images-dir', '../1', '--track-mem']);
  const written = pagesWritten(join(base, '2'));
  assert.ok(written < PAGES * 0.04, `two rounds of 1% since the pre-dump: ${written} pages`);
  await restoreAndVerify(t, join(base, '2'));
});

test('a dump against a parent older than the last pre-dump is not trusted: all pages are written', async () => {
  const t = await startTarget('memhog', ['64'], { timeoutMs: 60_000 });
  const base = makeTmpDir('predump-stale');
  run(['pre-dump', '-t', String(t.pid), '-D', join(base, '1')]);
  await dirty(t, 1);
  run(['pre-dump', '-t', String(t.pid), '-D', join(base, '2'), '--prev-images-dir', '../1']);
  await dirty(t, 2);
  const args = ['dump', '-t', String(t.pid), '-D', join(base, '3'), '--prev-images-dir', '../1'];
  const r = amber(args);
  assert.equal(r.status, 0, describeAmber(args, r));
  assert.match(r.stderr, /not the one the previous dump left .*; dumping all its pages/);
  assert.ok(pagesWritten(join(base, '3')) >= (64 << 20) / 4096, 'full dump');
  await restoreAndVerify(t, join(base, '3'));
});

test('tracking a sparse 64 GiB area costs no page tables, and the incremental dump stays small', async () => {
  const t = await startTarget('mem_flags');
  const base = makeTmpDir('predump-sparse');
  const pte = () => Number(/^VmPTE:\s+(\d+)/m.exec(readFileSync(`/proc/${t.pid}/status`, 'utf8'))![1]);
  const before = pte();
  run(['pre-dump', '-t', String(t.pid), '-D', join(base, '1')]);
  assert.ok(pte() < before + 1024, `page tables grew from ${before} to ${pte()} kB`);
  run(['dump', '-t', String(t.pid), '-D', join(base, '2'), '--prev-images-dir', '../1', '--track-mem']);
  assert.ok(statSync(join(base, '2', 'pages-1.img')).size < 8 << 20, 'holes are not dumped');
  await restoreAndVerify(t, join(base, '2'));
});

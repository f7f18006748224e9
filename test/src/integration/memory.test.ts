import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, statSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  amber, cleanup, describeAmber, diffSnapshots, isAlive, makeTmpDir, reap, snapshotProc, startTarget, targetPath,
  verdict, WORKDIR, type Target,
  amberOk, critDecode,
} from '../harness';

after(cleanup);

const run = amberOk;

const crit = critDecode;

/**
 * Objects that exist only in memory (shared anonymous memory, memfds, deleted files) are created
 * anew by a restore: same name, same contents, a new inode. Drop lost/gained pairs that differ
 * only in that.
 */
function withoutNewInodes(diffs: string[]): string[] {
  const key = (d: string) => {
    const m = /^maps: (?:lost|gained) +(\S+ \S+ \S+) \S+ \d+ (.* \(deleted\))$/.exec(d);
    return m ? `${m[1]} ${m[2]}` : undefined;
  };
  const lost = new Set(diffs.filter((d) => d.startsWith('maps: lost')).map(key));
  const gained = new Set(diffs.filter((d) => d.startsWith('maps: gained')).map(key));
  return diffs.filter((d) => {
    const k = key(d);
    return k === undefined || !(lost.has(k) && gained.has(k));
  });
}

/**
 * dump -> target gone -> restore -> same maps/status/fds -> amber compare clean (contents: the
 * target checks them). Up to 1 MiB of pages amber reads them itself through /proc/PID/mem (the
 * path --pages-via amber forces, and that of a task that cannot open the image); above, the task
 * vmsplice()s its pages into a pipe of its own and splice()s them into the pages file on disk
 * (/var/tmp), and on tmpfs (/dev/shm) copies them into a mapping of the file while amber zeroes
 * its back; --pages-via splice, copy or writev forces one of those.
 */
async function roundTrip(t: Target, label: string, how: { via?: 'splice' | 'copy' | 'writev' | 'amber'; imagesIn?: string } = {}): Promise<string> {
  const before = snapshotProc(t.pid);
  const dir = makeTmpDir(label, how.imagesIn ?? '/var/tmp');
  const dumped = run(['dump', '-t', String(t.pid), '-D', dir, '-v', ...(how.via ? ['--pages-via', how.via] : [])]);
  // up to 1 MiB of pages amber reads them itself (/proc/PID/mem) unless told otherwise
  const bytes = Number(new RegExp(`pid ${t.pid}: (\\d+) bytes of pages via`).exec(dumped.stderr)?.[1]);
  const via = how.via ?? (bytes <= 1 << 20 ? 'amber' : how.imagesIn === '/dev/shm' ? 'copy' : 'splice');
  assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: \\d+ bytes of pages via ${via}`));
  if (via === 'splice') assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: pages move through a pipe of \\d+ bytes`));
  const exit = await reap(t.pid);
  assert.equal(exit.signal, 9, exit.text);
  run(['restore', '-D', dir, '-d']);
  assert.ok(isAlive(t.pid), `pid ${t.pid} is back`);
  assert.deepEqual(withoutNewInodes(diffSnapshots(before, snapshotProc(t.pid))), [], '/proc maps, status and fds as before');
  run(['compare', '-t', String(t.pid), '-D', dir]);
  return dir;
}

test('shared anonymous memory, memfd, MAP_SHARED file and deleted files come back', async () => {
  const t = await startTarget('mem_shared', [WORKDIR]);
  const dir = await roundTrip(t, 'mem-shared');
  const objects = readdirSync(dir).filter((f) => f.startsWith('pagemap-shmem-'));
  // the anonymous object is mapped twice but dumped once; memfd and two deleted files
  assert.equal(objects.length, 4, `one pagemap per object: ${objects.join(', ')}`);
  for (const f of objects) assert.equal(crit(join(dir, f)).magic, 'PAGEMAP');
  const mm = crit(join(dir, `mm-${t.pid}.img`)).entries[0] as { vmas: { status: string | number }[] };
  assert.ok(mm.vmas.length > 0);
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

for (const [label, how] of [
  ['read by amber through /proc/PID/mem, the default for at most 1 MiB of them', {}],
  ['written by the task onto tmpfs', { via: 'writev', imagesIn: '/dev/shm' }],
  ['spliced by the task onto tmpfs', { via: 'splice', imagesIn: '/dev/shm' }],
  ['copied by the task onto a disk filesystem (/var/tmp)', { via: 'copy' }],
  ['copied by the task onto tmpfs', { via: 'copy', imagesIn: '/dev/shm' }],
  ['writev', { via: 'writev' }],
  ['amber', { via: 'amber' }],
] as const) {
test(`guards, data behind PROT_NONE, growsdown, mprotect splits, mremap, mlock, madvise state and a sparse 64 GiB area come back (pages ${label})`, async () => {
  const t = await startTarget('mem_flags');
  const t0 = performance.now();
  const dir = await roundTrip(t, 'mem-flags', how);
  const seconds = (performance.now() - t0) / 1000;
  // 5 touched pages of the 64 GiB area, the other areas' ~60 pages, libc: far below 64 GiB
  const pages = statSync(join(dir, 'pages-1.img')).size;
  assert.ok(pages < 8 << 20, `pages image is ${pages} bytes`);
  assert.ok(seconds < 20, `dump + restore of a 64 GiB sparse area took ${seconds.toFixed(1)} s`);
  const pagemap = crit(join(dir, `pagemap-${t.pid}.img`)).entries;
  assert.equal(pagemap[0].pages_id, 1);
  const mm = crit(join(dir, `mm-${t.pid}.img`)).entries[0] as { vmas: { madv?: string }[] };
  assert.ok(mm.vmas.some((v) => v.madv !== undefined && BigInt(v.madv) !== 0n), 'madvise state in mm.img');
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});
}

for (const [imagesIn, fill] of [['/dev/shm', 'uffd'], ['/var/tmp', 'preadv']] as const) {
test(`300 MiB dumped into ${imagesIn}, copied by the task from the front while amber zeroes the back, verifies after a restore by ${fill}`, async () => {
  const t = await startTarget('memhog', ['300']);
  const dir = makeTmpDir('memhog', imagesIn);
  const dumped = run(['dump', '-t', String(t.pid), '-D', dir, '-v', '--pages-via', 'copy']);
  assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: \\d+ bytes of pages via copy`));
  // the two met somewhere inside: the task's windows took the front, the zeroes the back
  const met = Number(new RegExp(`pid ${t.pid}: the task copied (\\d+) bytes into its windows; zeroes were written from byte \\1 up`).exec(dumped.stderr)?.[1]);
  const size = statSync(join(dir, 'pages-1.img')).size;
  assert.ok(size >= 300 << 20, `pages-1.img is ${size} bytes`);
  assert.ok(met > 0 && met < size, `the meeting point ${met} lies inside the ${size} bytes: ${dumped.stderr}`);
  await reap(t.pid);
  const restored = run(['restore', '-D', dir, '-d', '-v', ...(fill === 'preadv' ? ['--pages-fill', 'preadv'] : [])]);
  const byUffd = new RegExp(`pid ${t.pid}: \\d+ bytes filled by UFFDIO_COPY`);
  const byPreadv = new RegExp(`pid ${t.pid}: (\\d+) bytes read in by preadv in the task`);
  if (fill === 'uffd') assert.match(restored.stderr, byUffd);
  else {
    assert.doesNotMatch(restored.stderr, byUffd);
    assert.ok(Number(byPreadv.exec(restored.stderr)?.[1]) >= 300 << 20, restored.stderr);
  }
  const v = await verdict(t);
  assert.ok(v.passed, `memhog's own check of every word: ${v.lines.join(' | ')}`);
});
}

for (const [imagesIn, via] of [['/var/tmp', 'splice'], ['/dev/shm', 'copy']] as const) {
test(`above 1 MiB of pages, the task moves them by ${via} into ${imagesIn} unless told otherwise`, async () => {
  const t = await startTarget('memhog', ['8']);
  await roundTrip(t, 'memhog-default', { imagesIn });
  const v = await verdict(t);
  assert.ok(v.passed, `memhog's own check of every word: ${v.lines.join(' | ')}`);
});
}

test('a task with no address space to spare for a window of the pages file is dumped by writev instead', async () => {
  const t = await startTarget('memhog', ['64']);
  const vmKb = Number(/^VmSize:\s+(\d+) kB/m.exec(readFileSync(`/proc/${t.pid}/status`, 'utf8'))![1]);
  const limit = (vmKb + 4096) * 1024; // room for amber's scratch page, not for a 64 MiB window
  const p = spawnSync('prlimit', ['--pid', String(t.pid), `--as=${limit}:${limit}`], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const dir = makeTmpDir('tight-as', '/dev/shm');
  const dumped = run(['dump', '-t', String(t.pid), '-D', dir, '-v', '--pages-via', 'copy']);
  assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: no room in its address space for a window of the pages file; writev instead`));
  assert.equal(statSync(join(dir, 'pages-1.img')).size >= 64 << 20, true);
  await reap(t.pid);
  run(['restore', '-D', dir, '-d']);
  assert.match(readFileSync(`/proc/${t.pid}/limits`, 'utf8'), new RegExp(`Max address space\\s+${limit}\\s+${limit}`));
  const v = await verdict(t);
  assert.ok(v.passed, `memhog's own check of every word: ${v.lines.join(' | ')}`);
});

for (const [imagesIn, fill] of [['/var/tmp', 'uffd'], ['/dev/shm', 'preadv']] as const) {
test(`300 MiB spliced by the task into ${imagesIn}, with its pages still its own, verifies after a restore by ${fill}`, async () => {
  const t = await startTarget('memhog', ['300']);
  const rssBefore = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${t.pid}/status`, 'utf8'))![1]);
  const dir = makeTmpDir('memhog-splice', imagesIn);
  // splice is the default on a disk filesystem; on tmpfs it is asked for
  const dumped = run(['dump', '-t', String(t.pid), '-D', dir, '-v', '--leave-running', ...(imagesIn === '/dev/shm' ? ['--pages-via', 'splice'] : [])]);
  assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: (\\d+) bytes of pages via splice`));
  assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: pages move through a pipe of \\d+ bytes`));
  assert.ok(statSync(join(dir, 'pages-1.img')).size >= 300 << 20);
  // the task runs on with every page as it was, and as the images hold it
  const rssAfter = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${t.pid}/status`, 'utf8'))![1]);
  assert.ok(rssAfter >= rssBefore, `RSS ${rssBefore} kB before, ${rssAfter} kB after`);
  run(['compare', '-t', String(t.pid), '-D', dir]);
  assert.deepEqual(readdirSync(`/proc/${t.pid}/fd`).sort(), ['0', '1', '2'], 'no pipe or pages file left in the task');
  process.kill(t.pid, 'SIGKILL');
  await reap(t.pid);
  run(['restore', '-D', dir, '-d', ...(fill === 'preadv' ? ['--pages-fill', 'preadv'] : [])]);
  const v = await verdict(t);
  assert.ok(v.passed, `memhog's own check of every word: ${v.lines.join(' | ')}`);
});
}

test('a splice that moves less than asked goes on from where it stopped, through a new pipe, and the pages come back right', async () => {
  // 300 MiB: more than one stop's pairs, so pages follow the short one
  const t = await startTarget('memhog', ['300']);
  const dir = makeTmpDir('short-splice', '/var/tmp');
  const dumped = amber(['dump', '-t', String(t.pid), '-D', dir, '-v', '--pages-via', 'splice'], { env: { AMBER_FAULT: 'dump:splice-short' } });
  assert.equal(dumped.status, 0, dumped.stderr);
  assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: a short move at 0x[0-9a-f]+.*; on through a new pipe`));
  await reap(t.pid);
  run(['restore', '-D', dir, '-d']);
  const v = await verdict(t);
  assert.ok(v.passed, `memhog's own check of every word: ${v.lines.join(' | ')}`);
});

test('a task that has no fd to spare for a pipe is dumped by writev instead, its unreadable pages in their place', async () => {
  const t = await startTarget('mem_flags');
  const fds = readdirSync(`/proc/${t.pid}/fd`).map(Number);
  const limit = Math.max(...fds) + 2; // room for the pages file, not for a pipe's two ends
  const p = spawnSync('prlimit', ['--pid', String(t.pid), `--nofile=${limit}:${limit}`], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const before = snapshotProc(t.pid);
  const dir = makeTmpDir('no-pipe', '/var/tmp');
  // splice asked for: mem_flags has too few pages for the task to move them by default
  const dumped = run(['dump', '-t', String(t.pid), '-D', dir, '-v', '--pages-via', 'splice']);
  assert.match(dumped.stderr, new RegExp(`pid ${t.pid}: no pipe in the task, or no splice into .*; writev instead`));
  await reap(t.pid);
  run(['restore', '-D', dir, '-d']);
  assert.deepEqual(withoutNewInodes(diffSnapshots(before, snapshotProc(t.pid))), [], '/proc maps, status and fds as before');
  const v = await verdict(t);
  assert.ok(v.passed, `target's own checks: ${v.lines.join(' | ')}`);
});

test('a restore refuses an executable that changed since the dump, naming it, and leaves nothing behind', async () => {
  const work = makeTmpDir('changed-exe');
  const copy = join(work, 'mem_copy');
  copyFileSync(targetPath('mem_flags'), copy);
  const t = await startTarget('mem_flags', [], { binary: copy });
  const dir = makeTmpDir('changed-exe-images');
  run(['dump', '-t', String(t.pid), '-D', dir]);
  await reap(t.pid);
  appendFileSync(copy, 'changed');
  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args);
  assert.notEqual(r.status, 0, describeAmber(args, r));
  assert.match(r.stderr + r.stdout, new RegExp(`${copy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} changed size`), describeAmber(args, r));
  assert.equal(isAlive(t.pid), false, 'no half-restored process is left');
  const helpers = spawnSync('pgrep', ['-f', copy], { encoding: 'utf8' });
  assert.equal(helpers.stdout.trim(), '', 'nothing runs the copied binary');
  assert.equal(readdirSync(dir).filter((f) => f.includes('.tmp-')).length, 0);
});

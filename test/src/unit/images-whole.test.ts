import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageError, ImageStore, PagemapFlag, readPstree, type PagemapEntry } from '@amber/core';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'amber-images-whole-'));
}

const PAGE = 4096;

/** A set with one pagemap (RUNS) and a pages file of PAGES pages; a pstree of TREE. */
function set(runs: PagemapEntry[], pages: number, tree = [{ pid: 10, ppid: 1, pgid: 10, sid: 10, threads: [10] }]): string {
  const dir = tmpDir();
  const s = ImageStore.forDump(dir);
  s.write('pstree', 'pstree', tree);
  s.write('pagemap', 'pagemap-10', runs, { head: { pagesId: 1 } });
  s.createPages(1, Buffer.alloc(pages * PAGE, 7));
  s.writeInventory({ imgVersion: 2 });
  return dir;
}

function refused(dir: string, re: RegExp): void {
  assert.throws(() => ImageStore.forRead(dir), (e: unknown) => e instanceof ImageError && re.test(e.message));
}

const P = PagemapFlag.PRESENT;

test('a pagemap agrees with its pages file, or the set is refused naming both', () => {
  assert.ok(ImageStore.forRead(set([{ vaddr: 0x1000n, nrPages: 2, flags: P }, { vaddr: 0x5000n, nrPages: 1, flags: PagemapFlag.PARENT }], 2)));
  refused(set([{ vaddr: 0x1000n, nrPages: 3, flags: P }], 2), /^pages-1\.img: 8192 bytes, but pagemap-10\.img has 3 pages \(12288 bytes\) in it/);
  refused(set([{ vaddr: 0x1001n, nrPages: 1, flags: P }], 1), /^pagemap-10\.img: entry 0: vaddr 0x1001 is not page-aligned$/);
  refused(set([{ vaddr: 0x1000n, nrPages: 0, flags: P }], 0), /^pagemap-10\.img: entry 0: nr_pages 0 is not a positive count$/);
  refused(set([{ vaddr: 0x3000n, nrPages: 1, flags: P }, { vaddr: 0x2000n, nrPages: 2, flags: P }], 3), /^pagemap-10\.img: entry 1: vaddr 0x2000 overlaps/);
});

test('pstree names a root, each pid and thread once, each task among its own threads', () => {
  const t = (pid: number, threads: number[]) => ({ pid, ppid: 1, pgid: pid, sid: pid, threads });
  const read = (dir: string) => readPstree(ImageStore.forRead(dir));
  assert.throws(() => read(set([], 0, [])), /^ImageError: pstree\.img: holds no process \(no root\)$/);
  assert.throws(() => read(set([], 0, [t(10, [11])])), /entry 0 \(pid 10\): its threads do not include the pid itself/);
  assert.throws(() => read(set([], 0, [t(10, [10]), t(12, [12, 10])])), /entry 1 \(pid 12\): thread id 10 appears twice/);
  assert.equal(read(set([], 0, [t(10, [10, 11]), t(12, [12])])).length, 2);
});

test('an image the inventory does not list is not read; one it lists but is gone is named as missing', () => {
  const dir = set([], 0);
  fs.writeFileSync(path.join(dir, 'core-10.img'), fs.readFileSync(path.join(dir, 'pstree.img')));
  const s = ImageStore.forRead(dir);
  assert.throws(() => s.read('pstree', 'core-10'), /^ImageError: core-10\.img: not part of the image set in .* \(inventory\.img does not list it\)$/);
  assert.equal(s.has('core-10'), false);
  assert.throws(() => s.read('core', 'core-11'), /core-11\.img: missing from /);
  fs.rmSync(path.join(dir, 'pstree.img'));
  refused(dir, /^pstree\.img: missing from .* \(inventory\.img lists it\)$/);
});

test("an amber inventory whose image list was stripped is refused; a set from elsewhere (no list, no plugins) is taken as it is", () => {
  const dir = set([{ vaddr: 0x1000n, nrPages: 1, flags: P }], 1);
  const s = ImageStore.forDump(path.join(dir, 'again'));
  s.write('pstree', 'pstree', [{ pid: 10, ppid: 1, pgid: 10, sid: 10, threads: [10] }]);
  s.writeInventory({ imgVersion: 2, amberPlugins: ['fs'] });
  assert.ok(ImageStore.forRead(s.dir));
  s.write('inventory', 'inventory', [{ imgVersion: 2, amberPlugins: ['fs'] }]); // the same, without amber_images
  refused(s.dir, /^inventory\.img: lists no images \(amber_images\): not a whole image set$/);
  s.write('inventory', 'inventory', [{ imgVersion: 2 }]);
  assert.ok(ImageStore.forRead(s.dir));
});

test('an image put back as a fifo, a link, a directory, or longer or shorter than listed, is refused, and nothing waits on a fifo', () => {
  const pstree = (dir: string) => path.join(dir, 'pstree.img');
  const replaced = (how: (file: string, bytes: Buffer) => void) => {
    const dir = set([], 0);
    const bytes = fs.readFileSync(pstree(dir));
    fs.rmSync(pstree(dir));
    how(pstree(dir), bytes);
    return dir;
  };
  // a fifo nobody writes: an open or read that waits would hang this test
  refused(replaced((f) => execFileSync('mkfifo', [f])), /^pstree\.img: not a regular file in /);
  refused(replaced((f, b) => {
    fs.writeFileSync(`${f}.real`, b);
    fs.symlinkSync(`${f}.real`, f);
  }), /^pstree\.img: not a regular file in /);
  refused(replaced((f) => fs.mkdirSync(f)), /^pstree\.img: (not a regular file|cannot read)/);
  refused(replaced((f, b) => fs.writeFileSync(f, Buffer.concat([b, Buffer.from([0])]))), /^pstree\.img: \d+ bytes, but inventory\.img says \d+: cut short or replaced$/);
  refused(replaced((f, b) => fs.writeFileSync(f, b.subarray(1))), /^pstree\.img: \d+ bytes, but inventory\.img says \d+: cut short or replaced$/);
  // the same length, other bytes
  refused(replaced((f, b) => fs.writeFileSync(f, Buffer.from(b.map((x, i) => (i === b.length - 1 ? x ^ 1 : x))))), /^pstree\.img: contents do not match the checksum in inventory\.img: altered or swapped$/);
});

test("a pages file's checksum is of (at most) 16 pages spread evenly over it, as the inventory records it", () => {
  for (const pages of [1, 3, 31, 64, 65, 200]) {
    const dir = tmpDir();
    const s = ImageStore.forDump(dir);
    const data = Buffer.alloc(pages * PAGE);
    for (let i = 0; i < data.length; i += 8) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    s.createPages(1, data);
    s.writeInventory({ imgVersion: 2 });
    const listed = ImageStore.forRead(dir).readInventory().amberImages.find((d) => d.name === 'pages-1.img');
    // the same picks, computed here on their own
    const picks = [...new Set(Array.from({ length: Math.min(16, pages) }, (_, i) => Math.floor((i * (pages - 1)) / 15)))].sort((a, b) => a - b);
    const hash = createHash('sha256');
    for (const p of picks) hash.update(data.subarray(p * PAGE, p * PAGE + PAGE));
    assert.ok(listed, `${pages} pages: listed`);
    assert.equal(listed.sampled, true);
    assert.equal(Buffer.from(listed.sha256).toString('hex'), hash.digest('hex'), `${pages} pages: the sampled checksum`);
  }
});

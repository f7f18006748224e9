import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ImageStore } from '@amber/core';
import { amber, cleanup, describeAmber, isAlive, makeTmpDir, reap, startTarget, verdict, WORKDIR, type Target } from '../harness';
import { entryBoundaries } from '../fuzz/mutants';

after(cleanup);

let t: Target;
let original: string;

before(async () => {
  t = await startTarget('files', [WORKDIR]);
  original = makeTmpDir('whole-original');
  const r = amber(['dump', '-t', String(t.pid), '-D', original]);
  assert.equal(r.status, 0, describeAmber(['dump'], r));
  await reap(t.pid);
});

function copyOf(label: string): string {
  const dir = makeTmpDir(label);
  for (const f of readdirSync(original)) copyFileSync(join(original, f), join(dir, f));
  return dir;
}

/** restore refuses with one `amber:` line matching PATTERN, and no task is left behind. */
function assertRefused(dir: string, pattern: RegExp): void {
  const args = ['restore', '-D', dir, '-d'];
  const r = amber(args);
  assert.notEqual(r.status, 0, describeAmber(args, r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, describeAmber(args, r));
  assert.match(lines[0], /^amber: /);
  assert.doesNotMatch(lines[0], /internal error/);
  assert.match(lines[0], pattern, describeAmber(args, r));
  assert.equal(isAlive(t.pid), false, 'no task is left');
}

const pagemapOf = (pid: number) => `pagemap-${pid}.img`;

test('the inventory lists every image with its size and checksum', () => {
  const inv = ImageStore.forRead(original).readInventory();
  const listed = (inv.amberImages ?? []).map((d) => d.name).sort();
  assert.deepEqual(listed, readdirSync(original).filter((f) => f.endsWith('.img') && f !== 'inventory.img').sort());
  for (const d of inv.amberImages ?? []) assert.equal(d.sha256.length, 32, d.name);
});

for (const image of ['pipes-data.img', 'fifo-data.img', 'file-locks.img']) {
  test(`a set with ${image} deleted is refused, naming it`, () => {
    const dir = copyOf(`whole-no-${image}`);
    unlinkSync(join(dir, image));
    assertRefused(dir, new RegExp(`${image.replace('.', '\\.')}: missing from ${dir} \\(inventory\\.img lists it\\)`));
  });
}

test('pstree.img cut at an entry boundary is refused', () => {
  const dir = copyOf('whole-pstree');
  truncateSync(join(dir, 'pstree.img'), 8);
  assertRefused(dir, /pstree\.img: 8 bytes, but inventory\.img says \d+: cut short or replaced/);
  // and with the inventory made to agree, the empty tree itself is refused
  ImageStore.reseal(dir);
  assertRefused(dir, /pstree\.img: holds no process \(no root\)/);
});

test('a pagemap cut at an entry boundary is refused, also when the inventory is made to agree', () => {
  const dir = copyOf('whole-pagemap');
  const file = join(dir, pagemapOf(t.pid));
  const bounds = entryBoundaries(readFileSync(file), 'pagemap.img');
  assert.ok(bounds.length >= 3, `pagemap has entries: ${bounds.join(',')}`);
  truncateSync(file, bounds[bounds.length - 2]);
  assertRefused(dir, new RegExp(`${pagemapOf(t.pid)}: \\d+ bytes, but inventory\\.img says`));
  ImageStore.reseal(dir);
  assertRefused(dir, new RegExp(`pages-\\d+\\.img: \\d+ bytes, but ${pagemapOf(t.pid)} has \\d+ pages`));
});

test('a pages file cut short, swapped images and a flipped byte are refused, naming the image', () => {
  let dir = copyOf('whole-pages');
  const pages = readdirSync(dir).find((f) => /^pages-\d+\.img$/.test(f) && readFileSync(join(dir, f)).length > 4096)!;
  truncateSync(join(dir, pages), 4096);
  assertRefused(dir, new RegExp(`${pages.replace('.', '\\.')}: 4096 bytes, but inventory\\.img says`));
  dir = copyOf('whole-swap');
  const a = join(dir, 'fifo-data.img');
  const b = join(dir, 'pipes-data.img');
  const [da, db] = [readFileSync(a), readFileSync(b)];
  writeFileSync(a, db);
  writeFileSync(b, da);
  assertRefused(dir, /(fifo|pipes)-data\.img: \d+ bytes, but inventory\.img says|(fifo|pipes)-data\.img: contents do not match/);
  dir = copyOf('whole-flip');
  const core = join(dir, `core-${t.pid}.img`);
  const bytes = readFileSync(core);
  bytes[bytes.length >> 1] ^= 0x40;
  writeFileSync(core, bytes);
  assertRefused(dir, new RegExp(`core-${t.pid}\\.img: contents do not match the checksum in inventory\\.img`));
});

test('the untouched set still restores and the process passes its self-check', async () => {
  const r = amber(['restore', '-D', copyOf('whole-good'), '-d']);
  assert.equal(r.status, 0, describeAmber(['restore'], r));
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

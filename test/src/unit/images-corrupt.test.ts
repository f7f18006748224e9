import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CoreMarch, ImageError, ImageStore, decodeImageFile, fpregsFromXsave, type CoreEntry } from '@amber/core';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'amber-images-bad-'));
}

const reg = (v: bigint) => v;
function coreEntry(i: number): CoreEntry {
  const z = reg(0n);
  return {
    mtype: CoreMarch.X86_64,
    threadInfo: {
      clearTidAddr: 0x7ffff7d8aa10n,
      gpregs: {
        r15: z, r14: z, r13: z, r12: z, bp: z, bx: z, r11: z, r10: z, r9: z, r8: z, ax: 0xfffffffffffffdfen,
        cx: z, dx: z, si: z, di: z, origAx: 0xe6n, ip: 0x401000n + BigInt(i), cs: 0x33n, flags: 0x246n,
        sp: 0x7fffffffe248n, ss: 0x2bn, fsBase: z, gsBase: z, ds: z, es: z, fs: z, gs: z,
      },
      fpregs: fpregsFromXsave(Buffer.alloc(832, i)),
      tls: [],
    },
    tc: {
      taskState: 1, exitCode: 0, personality: 0, flags: 0, blkSigset: 0n, comm: `t${i}`,
      sigactions: Array.from({ length: 64 }, () => ({ sigaction: 0n, flags: 0n, restorer: 0n, mask: 0n })),
    },
  };
}

/** A store with pstree.img and a 4-entry core-4242.img; returns the core file's bytes. */
function setup(): { dir: string; store: ImageStore; core: Buffer } {
  const dir = tmpDir();
  const store = ImageStore.forDump(dir);
  store.write('pstree', 'pstree', [{ pid: 4242, ppid: 1, pgid: 4242, sid: 4242, threads: [4242] }]);
  store.write('core', 'core-4242', [0, 1, 2, 3].map(coreEntry));
  store.writeInventory({ imgVersion: 2 });
  return { dir, store, core: fs.readFileSync(path.join(dir, 'core-4242.img')) };
}

/** f() must throw an ImageError (and nothing else) whose message matches. */
function throwsImageError(f: () => unknown, re: RegExp): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ImageError, `expected an ImageError, got ${String(caught)}`);
  assert.match(caught.message, re);
}

test('a truncated entry names the file, entry, offset and sizes', () => {
  const { dir, store, core } = setup();
  const p = path.join(dir, 'core-4242.img');
  fs.writeFileSync(p, core.subarray(0, core.length - 37));
  const entry3 = ((): number => {
    let off = 8;
    for (let i = 0; i < 3; i++) off += 4 + core.readUInt32LE(off);
    return off;
  })();
  const len3 = core.readUInt32LE(entry3);
  throwsImageError(() => store.read('core', 'core-4242'),
    new RegExp(`^core-4242\\.img: entry 3 at offset ${entry3} is truncated \\(wants ${len3} bytes, ${len3 - 37} left\\)$`));
  throwsImageError(() => decodeImageFile(p), /^core-4242\.img: entry 3 at offset/);
});

test('wrong magic, wrong prefix, zero-length and short files', () => {
  const { dir, store } = setup();
  const p = path.join(dir, 'pstree.img');
  const good = fs.readFileSync(p);
  const bad = Buffer.from(good);
  bad.writeUInt32LE(0x1234, 4);
  fs.writeFileSync(p, bad);
  throwsImageError(() => store.read('pstree', 'pstree'), /^pstree\.img: wrong magic 0x1234 \(expected pstree 0x50273030\)$/);
  throwsImageError(() => decodeImageFile(p), /^pstree\.img: unknown magic 0x1234$/);

  fs.copyFileSync(path.join(dir, 'core-4242.img'), p);
  throwsImageError(() => store.read('pstree', 'pstree'), /^pstree\.img: wrong magic 0x55053847 \(expected pstree 0x50273030, which is core\)$/);

  bad.writeUInt32LE(0x50273030, 4);
  bad.writeUInt32LE(0xdeadbeef, 0);
  fs.writeFileSync(p, bad);
  throwsImageError(() => store.read('pstree', 'pstree'), /^pstree\.img: wrong magic 0xdeadbeef/);

  fs.writeFileSync(p, Buffer.alloc(0));
  throwsImageError(() => store.read('pstree', 'pstree'), /^pstree\.img: empty file/);
  throwsImageError(() => decodeImageFile(p), /^pstree\.img: empty file/);
  fs.writeFileSync(p, good.subarray(0, 6));
  throwsImageError(() => store.read('pstree', 'pstree'), /^pstree\.img: truncated magic \(wants 8 bytes, 6 left\)$/);
  fs.writeFileSync(p, good.subarray(0, 10));
  throwsImageError(() => store.read('pstree', 'pstree'), /^pstree\.img: entry 0 at offset 8 is truncated \(wants 4 bytes of length, 2 left\)$/);
  throwsImageError(() => store.read('pstree', 'pstree-9'), /^pstree-9\.img: cannot read in .*ENOENT/);
});

test('a garbage length or garbage payload is an ImageError', () => {
  const { dir, store, core } = setup();
  const p = path.join(dir, 'core-4242.img');
  const bad = Buffer.from(core);
  bad.writeUInt32LE(0xfffffff0, 8);
  fs.writeFileSync(p, bad);
  throwsImageError(() => store.read('core', 'core-4242'), /^core-4242\.img: entry 0 at offset 8 is truncated \(wants 4294967280 bytes/);

  const junk = Buffer.from(core);
  junk.fill(0xff, 12, 40);
  fs.writeFileSync(p, junk);
  throwsImageError(() => store.read('core', 'core-4242'), /^core-4242\.img: entry 0 at offset 8: /);
});

test('every truncation and many byte flips give a parse or an ImageError, never another error', () => {
  const { dir, store, core } = setup();
  const p = path.join(dir, 'core-4242.img');
  const attempt = (bytes: Buffer): void => {
    fs.writeFileSync(p, bytes);
    for (const f of [() => store.read('core', 'core-4242'), () => decodeImageFile(p)]) {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof ImageError, `not an ImageError: ${String(e)}`);
        assert.match(e.message, /^core-4242\.img: /);
      }
    }
  };
  for (let cut = 0; cut < core.length; cut += 7) attempt(core.subarray(0, cut));
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(core);
    for (let k = 0; k < 1 + rand(4); k++) b[8 + rand(b.length - 8)] = rand(256);
    attempt(b);
  }
});

test('an image set without inventory.img is refused; a new dump never mixes with an old one', () => {
  const { dir } = setup();
  assert.equal(ImageStore.forRead(dir).readInventory().imgVersion, 2);
  throwsImageError(() => ImageStore.forDump(dir), /already holds a dump \(inventory\.img, 2 images\): choose an empty directory$/);
  assert.equal(fs.existsSync(path.join(dir, 'inventory.img')), true);
  fs.rmSync(path.join(dir, 'inventory.img'));
  throwsImageError(() => ImageStore.forDump(dir), /already holds images of an unfinished dump \(core-4242\.img, 2 images\)/);
  throwsImageError(() => ImageStore.forRead(dir), new RegExp(`^${dir}: not a complete image set \\(no inventory\\.img\\)$`));
  throwsImageError(() => ImageStore.forRead(path.join(dir, 'nope')), /cannot open the image directory \(ENOENT\)/);
  const s = ImageStore.forDump(path.join(dir, 'a', 'b'));
  assert.equal(fs.statSync(s.dir).mode & 0o777, 0o700);
  throwsImageError(() => s.write('pstree', '../evil', []), /is not a valid image name/);
  throwsImageError(() => s.write('nosuchtype', 'x', []), /unknown image type "nosuchtype"/);
  s.writeInventory({ imgVersion: 1 });
  throwsImageError(() => ImageStore.forRead(s.dir).readInventory(), /^inventory\.img: image version 1 is not supported \(expected 2\)$/);
});

test('a link planted in the image directory during a dump is never written through', () => {
  const dir = tmpDir();
  const victim = path.join(tmpDir(), 'victim');
  fs.writeFileSync(victim, 'precious\n');
  const s = ImageStore.forDump(dir);
  fs.symlinkSync(victim, path.join(dir, 'pages-1.img'));
  fs.linkSync(victim, path.join(dir, 'core-1.img'));
  throwsImageError(() => s.createPages(1, Buffer.alloc(4096, 1)), /^pages-1\.img: cannot create in .* \(EEXIST\)$/);
  throwsImageError(() => s.write('pstree', 'core-1', []), /^core-1\.img: appeared in .* during the dump \(amber did not write it\)/);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  // a failed dump removes only its own files: the planted ones are not its to remove
  s.write('pstree', 'pstree', []);
  s.discard();
  assert.deepEqual(fs.readdirSync(dir).sort(), ['core-1.img', 'pages-1.img']);
});

test('an image whose write fails (a full disk) is not left behind, and the dump can still be discarded whole', () => {
  const dir = tmpDir();
  const s = ImageStore.forDump(dir);
  s.write('pstree', 'pstree', []);
  // the node:fs module itself (core's `import * as fs` reads its properties live)
  const nodeFs = require('node:fs') as { writeFileSync: typeof fs.writeFileSync };
  const { writeFileSync } = nodeFs;
  nodeFs.writeFileSync = ((file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (typeof file === 'number') throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return (writeFileSync as (...a: unknown[]) => unknown)(file, ...rest);
  }) as typeof fs.writeFileSync;
  try {
    throwsImageError(() => s.write('pstree', 'core-1', []), /^core-1\.img: cannot write in .* \(ENOSPC\)$/);
    throwsImageError(() => s.createPages(1, Buffer.alloc(4096, 1)), /^pages-1\.img: cannot create in .* \(ENOSPC\)$/);
  } finally {
    nodeFs.writeFileSync = writeFileSync;
  }
  assert.deepEqual(fs.readdirSync(dir), ['pstree.img'], 'no half-written image');
  assert.deepEqual(s.discard(), []);
  assert.deepEqual(fs.readdirSync(dir), []);
});

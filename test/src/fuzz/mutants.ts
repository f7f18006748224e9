/**
 * Mutated copies of a real image set: what a disk, a copy or a careless hand does to one.
 * Each mutant is one change to a copy of the set. "resealed" mutants also rewrite the
 * inventory's image list to match, so they get past the checksums and reach the checks behind
 * them (every image read validates what it needs), as a buggy writer or a deliberate edit would.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type MutationClass =
  | 'delete'
  | 'truncate-boundary'
  | 'truncate-mid'
  | 'flip'
  | 'swap'
  | 'truncate-pages'
  | 'empty';

export interface Mutant {
  index: number;
  cls: MutationClass;
  resealed: boolean;
  /** what was done, for the report */
  label: string;
  apply(dir: string): void;
}

/** A small deterministic PRNG (mulberry32), so a failing mutant can be made again by its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PAGES_RE = /^pages-\d+\.img$/;

/**
 * Offsets just after each whole entry of a framed image, read as [u32 len][payload]* after the
 * magic. Images with raw blobs after entries give fewer (the walk stops where it stops making
 * sense), which still makes a truncation.
 */
export function entryBoundaries(buf: Buffer, name: string): number[] {
  const start = name === 'inventory.img' ? 4 : 8;
  const out: number[] = [];
  for (let off = start; off + 4 <= buf.length; ) {
    const len = buf.readUInt32LE(off);
    if (off + 4 + len > buf.length) break;
    off += 4 + len;
    out.push(off);
  }
  return out.filter((o) => o < buf.length);
}

/** Every image file of the set DIR, with its size. */
function imagesOf(dir: string): { name: string; size: number }[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.img')).sort().map((name) => ({ name, size: fs.statSync(path.join(dir, name)).size }));
}

const CLASSES: MutationClass[] = ['delete', 'truncate-boundary', 'truncate-mid', 'flip', 'swap', 'truncate-pages', 'empty'];

/** COUNT mutants of the image set in DIR (not changed itself), from SEED. */
export function makeMutants(dir: string, count: number, seed: number): Mutant[] {
  const rand = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const images = imagesOf(dir);
  const framed = images.filter((i) => !PAGES_RE.test(i.name) && i.size > 8);
  const pages = images.filter((i) => PAGES_RE.test(i.name) && i.size > 0);
  const out: Mutant[] = [];
  for (let index = 0; out.length < count; index++) {
    const cls = CLASSES[index % CLASSES.length];
    // half of them resealed: past the checksums, into the decoders and the restore itself
    const resealed = Math.floor(index / CLASSES.length) % 2 === 1;
    const file = (name: string, d: string) => path.join(d, name);
    switch (cls) {
      case 'delete': {
        const img = pick(images);
        out.push({ index, cls, resealed, label: `delete ${img.name}`, apply: (d) => fs.rmSync(file(img.name, d)) });
        break;
      }
      case 'empty': {
        const img = pick(images);
        out.push({ index, cls, resealed, label: `empty ${img.name}`, apply: (d) => fs.truncateSync(file(img.name, d), 0) });
        break;
      }
      case 'truncate-boundary': {
        const img = pick(framed);
        const bounds = entryBoundaries(fs.readFileSync(file(img.name, dir)), img.name);
        // no whole entry to drop: cut right after the magic instead
        const at = bounds.length ? pick(bounds) : img.name === 'inventory.img' ? 4 : 8;
        out.push({ index, cls, resealed, label: `truncate ${img.name} at entry boundary ${at}/${img.size}`, apply: (d) => fs.truncateSync(file(img.name, d), at) });
        break;
      }
      case 'truncate-mid': {
        const img = pick(framed);
        const at = 1 + Math.floor(rand() * (img.size - 1));
        out.push({ index, cls, resealed, label: `truncate ${img.name} at ${at}/${img.size}`, apply: (d) => fs.truncateSync(file(img.name, d), at) });
        break;
      }
      case 'flip': {
        const img = pick(framed);
        const flips = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => [Math.floor(rand() * img.size), 1 + Math.floor(rand() * 255)]);
        out.push({
          index, cls, resealed, label: `flip ${img.name} at ${flips.map(([o, x]) => `${o}^0x${x.toString(16)}`).join(',')}`,
          apply: (d) => {
            const b = fs.readFileSync(file(img.name, d));
            for (const [o, x] of flips) b[o] ^= x;
            fs.writeFileSync(file(img.name, d), b);
          },
        });
        break;
      }
      case 'swap': {
        const a = pick(images);
        // same kind when there is one (core-A <-> core-B), else any other image
        const kind = a.name.replace(/[-\d]+\.img$/, '');
        const same = images.filter((i) => i.name !== a.name && i.name.replace(/[-\d]+\.img$/, '') === kind);
        const b = same.length ? pick(same) : pick(images.filter((i) => i.name !== a.name));
        out.push({
          index, cls, resealed, label: `swap ${a.name} <-> ${b.name}`,
          apply: (d) => {
            const tmp = file(`${a.name}.swap`, d);
            fs.renameSync(file(a.name, d), tmp);
            fs.renameSync(file(b.name, d), file(a.name, d));
            fs.renameSync(tmp, file(b.name, d));
          },
        });
        break;
      }
      case 'truncate-pages': {
        if (!pages.length) continue;
        const img = pick(pages);
        const at = rand() < 0.5 ? Math.floor(rand() * (img.size / 4096)) * 4096 : Math.floor(rand() * img.size);
        out.push({ index, cls, resealed, label: `truncate ${img.name} at ${at}/${img.size}`, apply: (d) => fs.truncateSync(file(img.name, d), at) });
        break;
      }
    }
  }
  return out;
}

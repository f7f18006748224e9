/**
 * A directory of image files. A dump writes every image, then the inventory
 * last: a set without inventory.img is incomplete and is refused for reading.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ImageError } from './errors';
import { buildImage, parseImage } from './framing';
import { type ImageType, resolveImageType } from './registry';
import { IMG_VERSION_V1_1, type InventoryEntry } from './types';

const INVENTORY = 'inventory.img';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface ImageWriteOptions {
  /** the head message, for types that have one (pagemap) */
  head?: object;
  /** blobs[i] follows entry i, for types with blobLength */
  blobs?: (Buffer | undefined)[];
}

export interface ImageContents<T extends object> {
  head?: object;
  entries: T[];
  /** one slot per entry; undefined for types without blobs */
  blobs: (Buffer | undefined)[];
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message;
}

export class ImageStore {
  private constructor(readonly dir: string) {}

  /** Open DIR for a new dump: created (0700) if missing; a stale inventory is removed first. */
  static forDump(dir: string): ImageStore {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.rmSync(path.join(dir, INVENTORY), { force: true });
    } catch (e) {
      throw new ImageError(`${dir}: cannot prepare the image directory (${errText(e)})`);
    }
    return new ImageStore(dir);
  }

  /** Open a complete image set. */
  static forRead(dir: string): ImageStore {
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch (e) {
      throw new ImageError(`${dir}: cannot open the image directory (${errText(e)})`);
    }
    if (!st.isDirectory()) throw new ImageError(`${dir}: not a directory`);
    if (!fs.existsSync(path.join(dir, INVENTORY))) {
      throw new ImageError(`${dir}: not a complete image set (no ${INVENTORY})`);
    }
    return new ImageStore(dir);
  }

  private fileOf(name: string): string {
    if (!NAME_RE.test(name)) throw new ImageError(`${this.dir}: "${name}" is not a valid image name`);
    return `${name}.img`;
  }

  /** Write NAME.img (mode 0600) atomically: a crash leaves the old file or none. */
  write<T extends object>(type: ImageType, name: string, entries: T[], opts: ImageWriteOptions = {}): void {
    const file = this.fileOf(name);
    const data = buildImage(resolveImageType(type), file, entries, opts.head, opts.blobs);
    const target = path.join(this.dir, file);
    const tmp = `${target}.tmp-${process.pid}`;
    try {
      fs.writeFileSync(tmp, data, { mode: 0o600 });
      fs.renameSync(tmp, target);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw new ImageError(`${file}: cannot write in ${this.dir} (${errText(e)})`);
    }
  }

  read<T extends object>(type: ImageType, name: string): ImageContents<T> {
    const file = this.fileOf(name);
    const r = resolveImageType(type);
    let buf: Buffer;
    try {
      buf = fs.readFileSync(path.join(this.dir, file));
    } catch (e) {
      throw new ImageError(`${file}: cannot read in ${this.dir} (${errText(e)})`);
    }
    const parsed = parseImage(r, file, buf);
    return { head: parsed.head, entries: parsed.entries as T[], blobs: parsed.blobs };
  }

  has(name: string): boolean {
    return fs.existsSync(path.join(this.dir, this.fileOf(name)));
  }

  /** DIR/pages-<id>.img: raw page data, no header. */
  pagesPath(id: number): string {
    if (!Number.isInteger(id) || id < 0) throw new ImageError(`${this.dir}: bad pages id ${id}`);
    return path.join(this.dir, `pages-${id}.img`);
  }

  /** Mark the set complete; call after every other image is written. */
  writeInventory(entry: InventoryEntry): void {
    this.write('inventory', 'inventory', [entry]);
  }

  readInventory(): InventoryEntry {
    const { entries } = this.read<InventoryEntry>('inventory', 'inventory');
    if (entries.length !== 1) throw new ImageError(`${INVENTORY}: holds ${entries.length} entries, expected 1`);
    const version = entries[0].imgVersion;
    if (version !== IMG_VERSION_V1_1) {
      throw new ImageError(`${INVENTORY}: image version ${version} is not supported (expected ${IMG_VERSION_V1_1})`);
    }
    return entries[0];
  }

  /** Names of the image files present (*.img), sorted. */
  list(): string[] {
    try {
      return fs.readdirSync(this.dir).filter((f) => f.endsWith('.img')).sort();
    } catch (e) {
      throw new ImageError(`${this.dir}: cannot list (${errText(e)})`);
    }
  }
}

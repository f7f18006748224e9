/**
 * A directory of image files. A dump writes every image, then the inventory
 * last: a set without inventory.img is incomplete and is refused for reading.
 *
 * The inventory lists every image of the set with its size and checksum, and
 * a reader checks them all before trusting any: a set with an image missing,
 * cut short, swapped or altered is refused up front, naming the image.
 *
 * A dump writes only into a directory that it created or that is the
 * caller's own and writable by no one else, and only into files it creates
 * itself (O_EXCL|O_NOFOLLOW): a link planted in the directory is never
 * written through. If the dump fails, discard() removes exactly what it made.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Sha256, sha256 } from '../kernel/digest';
import { ImageError } from './errors';
import { buildImage, parseImage } from './framing';
import { checkPagemaps } from './set-checks';
import { type ImageType, resolveImageType } from './registry';
import { IMG_VERSION_V1_1, type AmberImageDigest, type InventoryEntry, type ToWrite } from './types';

const INVENTORY = 'inventory.img';
const PARENT_LINK = 'parent';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PAGES_RE = /^pages-\d+\.img$/;
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const CREATE_NEW = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/*
 * Pages files are written by the task itself (a copy into a shared mapping of the file, or its
 * own writev), so their bytes never pass through amber: a full hash would read GBs back, doubling
 * the dump's I/O. Their size is exact (the pagemap, itself hashed, says how many pages each holds)
 * and a hash of a few evenly spaced pages tells a swapped or overwritten pages file; a flipped
 * byte inside page data is not caught (nor is it by CRIU).
 */
const PAGE = 4096;
const PAGE_SAMPLES = 16;
/** An image up to this size is kept from the set check for its reader (a tree's are ~1 KiB each). */
const KEEP_CHECKED_BYTES = 64 << 10;
/** Images up to this size are read for their check without a stat first (digestOf). */
const READ_WITHOUT_STAT = 16n << 20n;

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

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** The checksum of an image's bytes, as the inventory records it. */
function digestOfBytes(name: string, data: Buffer): AmberImageDigest {
  return { name, size: BigInt(data.length), sha256: sha256(data) };
}

/**
 * The checksum of one image file, as the inventory records it, and (not for a pages file, of
 * which only pages spread over it are read) the bytes it was taken of.
 *
 * `listedSize`, when the inventory gives one: the check of a set reads such an image without a
 * stat first. A read of exactly that many bytes, then end of file, is all that is wanted of it
 * (its checksum says whether they are the right ones); only one that comes out otherwise is looked
 * at to say what it is. Opened O_NONBLOCK: a fifo put in its place must not hang the read. (node
 * 20 builds four Date objects into every fs.Stats: a stat of each of the 50 x 4 tree's ~500
 * images, and a second one of its fd, cost a restore ~10 ms.)
 */
function digestOf(dir: string, name: string, listedSize?: bigint): { digest: AmberImageDigest; bytes?: Buffer } {
  const fd = openImage(dir, name);
  try {
    if (listedSize !== undefined && listedSize <= READ_WITHOUT_STAT && !PAGES_RE.test(name)) {
      const want = Number(listedSize);
      const buf = Buffer.allocUnsafe(want + 1);
      // one read, asking one byte more than listed: a regular file of the listed size gives just
      // that many (its end), a longer one the byte more
      let got = 0;
      do {
        const n = fs.readSync(fd, buf, got, buf.length - got, null);
        if (n === 0) break;
        got += n;
      } while (got < want);
      if (got === want) return { digest: digestOfBytes(name, buf.subarray(0, want)), bytes: buf.subarray(0, want) };
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new ImageError(`${name}: not a regular file in ${dir}`);
      throw new ImageError(`${name}: ${st.size} bytes, but ${INVENTORY} says ${listedSize}: cut short or replaced`);
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new ImageError(`${name}: not a regular file in ${dir}`);
    if (listedSize !== undefined && BigInt(st.size) !== listedSize) throw new ImageError(`${name}: ${st.size} bytes, but ${INVENTORY} says ${listedSize}: cut short or replaced`);
    if (!PAGES_RE.test(name)) {
      const bytes = fs.readFileSync(fd);
      return { digest: digestOfBytes(name, bytes), bytes };
    }
    const hash = new Sha256();
    const pages = Math.floor(st.size / PAGE);
    const buf = Buffer.alloc(PAGE);
    const picks = new Set<number>();
    for (let i = 0; i < Math.min(PAGE_SAMPLES, pages); i++) picks.add(Math.floor((i * (pages - 1)) / Math.max(1, PAGE_SAMPLES - 1)));
    for (const p of [...picks].sort((a, b) => a - b)) hash.update(buf.subarray(0, fs.readSync(fd, buf, 0, PAGE, p * PAGE)));
    return { digest: { name, size: BigInt(st.size), sha256: hash.digest(), sampled: true } };
  } finally {
    fs.closeSync(fd);
  }
}

/** An image of the set, opened to be read: never through a link, never waiting on a fifo. */
function openImage(dir: string, name: string): number {
  try {
    return fs.openSync(path.join(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageError(`${name}: missing from ${dir} (${INVENTORY} lists it)`);
    if (code === 'ELOOP') throw new ImageError(`${name}: not a regular file in ${dir}`);
    throw e;
  }
}

/** The caller's own directory, writable by no one else: a dump may write there. */
function checkDirForDump(dir: string): void {
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new ImageError(`${dir}: not a directory`);
  const uid = process.geteuid?.() ?? 0;
  if (st.uid !== uid) throw new ImageError(`${dir}: owned by uid ${st.uid}, not by the caller (uid ${uid}): choose a directory of your own`);
  if (st.mode & 0o022) {
    throw new ImageError(`${dir}: writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)}): others could plant links there; choose a directory only you can write`);
  }
}

/** Refuses a directory holding images already: a new dump never mixes with an old one. */
function checkNoImages(dir: string): void {
  const names = fs.readdirSync(dir);
  const images = names.filter((n) => n.endsWith('.img')).sort();
  const hasParent = names.includes(PARENT_LINK);
  if (!images.length && !hasParent) return;
  const what = images.includes(INVENTORY) ? 'a dump' : 'images of an unfinished dump';
  const shown = images.includes(INVENTORY) ? INVENTORY : images[0] ?? PARENT_LINK;
  const count = images.length ? plural(images.length - (images.includes(INVENTORY) ? 1 : 0), 'image') : 'a parent link';
  throw new ImageError(`${dir} already holds ${what} (${shown}, ${count}): choose an empty directory`);
}

export class ImageStore {
  /** file names this store created (for a dump) */
  private readonly created = new Set<string>();
  /** the topmost directory this store created, if it made any */
  private createdDir?: string;
  /** set once the inventory is written (dump) or read and checked (read) */
  private inventory?: InventoryEntry;
  /** the images the inventory lists, by file name (read) */
  private listed?: Map<string, AmberImageDigest>;
  /** images decoded by the set checks (the pagemaps), handed whole to their first reader */
  private readonly decoded = new Map<string, ImageContents<object>>();
  /** read: the bytes the set check read and found matching, handed to their first reader */
  private readonly checkedBytes = new Map<string, Buffer>();
  /** dump: the checksum of each image amber wrote itself, taken of the bytes it wrote */
  private readonly writtenDigests = new Map<string, AmberImageDigest>();

  private constructor(readonly dir: string) {}

  /**
   * Open DIR for a new dump. A missing DIR is created (0700); an existing one must be the
   * caller's, writable by no one else, and hold no images.
   */
  static forDump(dir: string): ImageStore {
    const abs = path.resolve(dir);
    let made: string | undefined;
    try {
      if (!fs.lstatSync(abs, { throwIfNoEntry: false })) made = fs.mkdirSync(abs, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new ImageError(`${abs}: cannot create the image directory (${errText(e)})`);
    }
    let real: string;
    try {
      real = fs.realpathSync(abs);
      checkDirForDump(real);
      checkNoImages(real);
    } catch (e) {
      if (made) fs.rmSync(made, { recursive: true, force: true });
      if (e instanceof ImageError) throw e;
      throw new ImageError(`${abs}: cannot prepare the image directory (${errText(e)})`);
    }
    const store = new ImageStore(real);
    store.createdDir = made && fs.realpathSync(made);
    return store;
  }

  /** Open a complete image set: every image the inventory lists is there, whole and unchanged. */
  static forRead(dir: string): ImageStore {
    const abs = path.resolve(dir);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (e) {
      throw new ImageError(`${abs}: cannot open the image directory (${errText(e)})`);
    }
    if (!st.isDirectory()) throw new ImageError(`${abs}: not a directory`);
    if (!fs.existsSync(path.join(abs, INVENTORY))) {
      throw new ImageError(`${abs}: not a complete image set (no ${INVENTORY})`);
    }
    const store = new ImageStore(abs);
    store.checkWhole();
    checkPagemaps(store, store.listed ? [...store.listed.keys()] : store.list());
    return store;
  }

  /** Checks what the inventory lists against the files; a set from elsewhere (no list) is taken as it is. */
  private checkWhole(): void {
    const inv = this.readInventoryFile();
    // decoded repeated fields are arrays, empty when absent
    if (!inv.amberImages.length) {
      if (inv.amberPlugins.length) throw new ImageError(`${INVENTORY}: lists no images (amber_images): not a whole image set`);
      this.inventory = inv;
      return;
    }
    const listed = new Map<string, AmberImageDigest>();
    for (const [i, d] of inv.amberImages.entries()) {
      if (!NAME_RE.test(d.name) || !d.name.endsWith('.img') || d.name === INVENTORY) {
        throw new ImageError(`${INVENTORY}: amber_images[${i}]: "${d.name}" is not an image name`);
      }
      if (d.sha256.length !== 32) throw new ImageError(`${INVENTORY}: amber_images[${i}] (${d.name}): sha256 is ${d.sha256.length} bytes, not 32`);
      listed.set(d.name, d);
    }
    for (const d of listed.values()) {
      let now: AmberImageDigest;
      try {
        const checked = digestOf(this.dir, d.name, d.size);
        now = checked.digest;
        if (checked.bytes && checked.bytes.length <= KEEP_CHECKED_BYTES && now.sha256.equals(d.sha256)) this.checkedBytes.set(d.name, checked.bytes);
      } catch (e) {
        if (e instanceof ImageError) throw e;
        throw new ImageError(`${d.name}: cannot read in ${this.dir} (${errText(e)})`);
      }
      if (!now.sha256.equals(d.sha256)) throw new ImageError(`${d.name}: contents do not match the checksum in ${INVENTORY}: altered or swapped`);
    }
    this.listed = listed;
    this.inventory = inv;
  }

  private fileOf(name: string): string {
    if (!NAME_RE.test(name)) throw new ImageError(`${this.dir}: "${name}" is not a valid image name`);
    return `${name}.img`;
  }

  /** A reader only trusts images the inventory lists. */
  private checkListed(file: string): void {
    if (!this.listed || this.listed.has(file)) return;
    if (!fs.existsSync(path.join(this.dir, file))) throw new ImageError(`${file}: missing from ${this.dir} (the image set needs it)`);
    throw new ImageError(`${file}: not part of the image set in ${this.dir} (${INVENTORY} does not list it)`);
  }

  /**
   * Creates DIR/FILE new, never through a link or over an existing file, holding DATA. A file this
   * made whose write then fails (ENOSPC) is removed again: it is not yet among those discard() knows.
   */
  private createNew(file: string, data: Buffer): void {
    const at = path.join(this.dir, file);
    const fd = fs.openSync(at, CREATE_NEW, 0o600);
    try {
      fs.writeFileSync(fd, data);
    } catch (e) {
      fs.rmSync(at, { force: true });
      throw e;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Write NAME.img (mode 0600): new, or (written again) renamed over the old one whole. */
  write<T extends object>(type: ImageType, name: string, entries: T[], opts: ImageWriteOptions = {}): void {
    const file = this.fileOf(name);
    this.decoded.delete(file);
    const data = buildImage(resolveImageType(type), file, entries, opts.head, opts.blobs);
    const target = path.join(this.dir, file);
    const tmp = `.${file}.tmp-${process.pid}`;
    // A new image is created in place: a dump cut short leaves no inventory, and the set is not
    // whole without it. One written again (a pre-dump's pagemap) goes aside and is renamed over.
    const again = this.created.has(file);
    try {
      if (again) {
        this.createNew(tmp, data);
        fs.renameSync(path.join(this.dir, tmp), target);
      } else {
        this.createNew(file, data);
        this.created.add(file);
      }
      this.writtenDigests.set(file, digestOfBytes(file, data));
    } catch (e) {
      if (again) fs.rmSync(path.join(this.dir, tmp), { force: true });
      if (e instanceof ImageError) throw e;
      if (!again && (e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ImageError(`${file}: appeared in ${this.dir} during the dump (amber did not write it): refusing to replace it`);
      }
      throw new ImageError(`${file}: cannot write in ${this.dir} (${errText(e)})`);
    }
    // An image rewritten after the inventory (the pagemap of a pre-dump) must not break the set.
    if (this.inventory && this.created.has(INVENTORY) && file !== INVENTORY) this.writeInventory(this.inventory);
  }

  read<T extends object>(type: ImageType, name: string): ImageContents<T> {
    const file = this.fileOf(name);
    const kept = this.decoded.get(file);
    if (kept) {
      this.decoded.delete(file);
      return kept as ImageContents<T>;
    }
    this.checkListed(file);
    const r = resolveImageType(type);
    let buf = this.checkedBytes.get(file);
    this.checkedBytes.delete(file);
    try {
      buf ??= fs.readFileSync(path.join(this.dir, file));
    } catch (e) {
      throw new ImageError(`${file}: cannot read in ${this.dir} (${errText(e)})`);
    }
    const parsed = parseImage(r, file, buf);
    return { head: parsed.head, entries: parsed.entries as T[], blobs: parsed.blobs };
  }

  /** read(), and the result kept for the next read() of the same image: decoded once, not twice. */
  readAndKeep<T extends object>(type: ImageType, name: string): ImageContents<T> {
    const contents = this.read<T>(type, name);
    this.decoded.set(this.fileOf(name), contents);
    return contents;
  }

  /** NAME.img of a type that holds exactly one entry (mm, ids, core, fs ...). */
  readOne<T extends object>(type: ImageType, name: string): T {
    const { entries } = this.read<T>(type, name);
    if (entries.length !== 1) throw new ImageError(`${name}.img: holds ${entries.length} entries, expected 1`);
    return entries[0];
  }

  has(name: string): boolean {
    const file = this.fileOf(name);
    if (this.listed) return this.listed.has(file);
    return fs.existsSync(path.join(this.dir, file));
  }

  /** DIR/pages-<id>.img: raw page data, no header. */
  pagesPath(id: number): string {
    if (!Number.isInteger(id) || id < 0) throw new ImageError(`${this.dir}: bad pages id ${id}`);
    const file = `pages-${id}.img`;
    this.checkListed(file);
    return path.join(this.dir, file);
  }

  /**
   * Creates DIR/pages-<id>.img, new and empty (or holding DATA), and returns its path. Whoever
   * opens it later (amber, or the task) adds O_NOFOLLOW.
   */
  createPages(id: number, data: Buffer = Buffer.alloc(0)): string {
    const p = this.pagesPath(id);
    const file = path.basename(p);
    try {
      this.createNew(file, data);
    } catch (e) {
      throw new ImageError(`${file}: cannot create in ${this.dir} (${errText(e)})`);
    }
    this.created.add(file);
    return p;
  }

  /** DIR/parent -> TARGET (the previous image set of an incremental dump, as CRIU links it). */
  linkParent(target: string): void {
    try {
      fs.symlinkSync(target, path.join(this.dir, PARENT_LINK));
    } catch (e) {
      throw new ImageError(`${PARENT_LINK}: cannot link in ${this.dir} (${errText(e)})`);
    }
    this.created.add(PARENT_LINK);
  }

  /** Mark the set complete; call after every other image is written. */
  writeInventory(entry: ToWrite<InventoryEntry>): void {
    const images = [...this.created].filter((f) => f !== INVENTORY && f !== PARENT_LINK).sort();
    const sealed: InventoryEntry = { amberPlugins: [], ...entry, amberImages: images.map((f) => this.writtenDigests.get(f) ?? digestOf(this.dir, f).digest) };
    this.inventory = sealed;
    this.write('inventory', 'inventory', [sealed]);
  }

  /** True once the inventory is written: the set is complete and must be kept. */
  get complete(): boolean {
    return this.created.has(INVENTORY);
  }

  /**
   * After a failed dump: removes every file this store created, and the directory if it made
   * it (and nothing else is in it). Never touches anything that was there before. A complete
   * set (the inventory written) is kept.
   */
  discard(): string[] {
    if (this.complete) return [];
    const problems: string[] = [];
    for (const f of this.created) {
      try {
        fs.rmSync(path.join(this.dir, f), { force: true });
      } catch (e) {
        problems.push(`${f}: ${errText(e)}`);
      }
    }
    this.created.clear();
    if (this.createdDir) {
      for (let d = this.dir; d.startsWith(this.createdDir); d = path.dirname(d)) {
        try {
          fs.rmdirSync(d);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${d}: ${errText(e)}`);
          break;
        }
        if (d === this.createdDir) break;
      }
    }
    return problems;
  }

  /**
   * Rewrites the image list of DIR's inventory from the files as they are now, dropping those
   * that are gone: for deliberate edits of an image set (image surgery, as `crit encode` allows,
   * and tests that must reach the checks behind the checksums).
   */
  static reseal(dir: string): void {
    const store = new ImageStore(path.resolve(dir));
    const inv = store.readInventoryFile();
    const images = (inv.amberImages ?? []).map((d) => d.name).filter((f) => fs.existsSync(path.join(store.dir, f)));
    const entry: InventoryEntry = { ...inv, amberImages: images.map((f) => digestOf(store.dir, f).digest) };
    store.created.add(INVENTORY);
    store.write('inventory', 'inventory', [entry]);
  }

  private readInventoryFile(): InventoryEntry {
    const { entries } = this.read<InventoryEntry>('inventory', 'inventory');
    if (entries.length !== 1) throw new ImageError(`${INVENTORY}: holds ${entries.length} entries, expected 1`);
    const version = entries[0].imgVersion;
    if (version !== IMG_VERSION_V1_1) {
      throw new ImageError(`${INVENTORY}: image version ${version} is not supported (expected ${IMG_VERSION_V1_1})`);
    }
    return entries[0];
  }

  readInventory(): InventoryEntry {
    return this.inventory ?? this.readInventoryFile();
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

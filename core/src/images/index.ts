// TEMPORARY stub until the images branch lands: same API, JSON files.
import { mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AmberError } from '../kernel/errors';
export class ImageError extends AmberError {}
export type ImageType = string;
export type InventoryEntry = Record<string, unknown>;
const rep = (_k: string, v: unknown) => (typeof v === 'bigint' ? { $b: v.toString() } : Buffer.isBuffer(v) ? v : v);
const rev = (_k: string, v: any) => (v && typeof v === 'object' && '$b' in v ? BigInt(v.$b) : v && v.type === 'Buffer' ? Buffer.from(v.data) : v);
export class ImageStore {
  private constructor(readonly dir: string) {}
  static forDump(dir: string) { mkdirSync(dir, { recursive: true, mode: 0o700 }); rmSync(join(dir, 'inventory.img'), { force: true }); return new ImageStore(dir); }
  static forRead(dir: string) { if (!existsSync(join(dir, 'inventory.img'))) throw new ImageError(`${dir}: not a complete image set (no inventory.img)`); return new ImageStore(dir); }
  write<T extends object>(_t: ImageType, name: string, entries: T[], opts?: { head?: object }) { writeFileSync(join(this.dir, name + '.img'), JSON.stringify({ head: opts?.head, entries }, rep), { mode: 0o600 }); }
  read<T extends object>(_t: ImageType, name: string): { head?: object; entries: T[]; blobs: (Buffer | undefined)[] } { const p = join(this.dir, name + '.img'); if (!existsSync(p)) throw new ImageError(`${name}.img: missing`); const o = JSON.parse(readFileSync(p, 'utf8'), rev); return { head: o.head, entries: o.entries, blobs: [] }; }
  has(name: string) { return existsSync(join(this.dir, name + '.img')); }
  pagesPath(id: number) { return join(this.dir, `pages-${id}.img`); }
  writeInventory(e: InventoryEntry) { this.write('inventory', 'inventory', [e]); }
  readInventory(): InventoryEntry { return this.read<InventoryEntry>('inventory', 'inventory').entries[0]; }
  list() { return readdirSync(this.dir); }
}
export function fpregsFromXsave(raw: Buffer): Record<string, unknown> { return { mxcsr: raw.readUInt32LE(24) }; }
export function decodeImageFile(path: string) { return { file: path, type: 'json', magic: 0, entries: [JSON.parse(readFileSync(path, 'utf8'), rev)] }; }

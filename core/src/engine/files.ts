import { AmberError } from '../kernel/errors';
import type { FileDescription } from './plugin';
import { FdType, type FownEntry, type RegFileEntry } from '../images';

export const NO_FOWN: FownEntry = { uid: 0, euid: 0, signum: 0, pidType: 0, pid: 0 };

/**
 * Every open file description of a dump, whoever found it (an fd, a file mapping, the exe link),
 * written once to files.img; on restore, looked up by id.
 */
export class FileRegistry {
  private readonly byId = new Map<number, FileDescription>();
  private nextOwnId = 1 << 24;

  constructor(entries: FileDescription[] = []) {
    for (const e of entries) this.byId.set(e.id, e);
  }

  add(desc: FileDescription): number {
    this.byId.set(desc.id, desc);
    return desc.id;
  }

  /** A regular file that no fd holds (a mapped file, the executable): gets an id of its own. */
  addRegular(name: string, flags: number, extra: Partial<RegFileEntry> = {}): number {
    for (const d of this.byId.values()) {
      const reg = d.reg as RegFileEntry | undefined;
      if (d.type === FdType.REG && reg && reg.name === name && reg.flags === flags && reg.pos === 0n && d.id >= 1 << 24) return d.id;
    }
    const id = this.nextOwnId++;
    this.byId.set(id, { id, type: FdType.REG, reg: { id, flags, pos: 0n, fown: NO_FOWN, name, ...extra } });
    return id;
  }

  get(id: number): FileDescription {
    const d = this.byId.get(id);
    if (!d) throw new AmberError(`files.img holds no file with id ${id} (corrupt or partial image)`);
    return d;
  }

  regular(id: number): RegFileEntry {
    const d = this.get(id);
    if (d.type !== FdType.REG || !d.reg) throw new AmberError(`file id ${id} is not a regular file (type ${d.type})`);
    return d.reg as RegFileEntry;
  }

  entries(): FileDescription[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }
}

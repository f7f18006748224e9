import * as path from 'node:path';
import { AmberError } from '../kernel/errors';
import type { FileKind } from './plugin';
import { FdType, PROTO_DIR, type FileEntry, type FileEntryMember, type FownEntry, type ImageStore, type RegFileEntry } from '../images';

export const NO_FOWN: FownEntry = { uid: 0, euid: 0, signum: 0, pidType: 0, pid: 0 };

/**
 * The member the core declares (files.proto) because more than one plugin uses it: the regular
 * file, which fds, file mappings, the executable, cwd/root and a FIFO's path all are.
 */
export const REG_MEMBER: FileEntryMember = { field: 3, name: 'reg', protoFile: path.join(PROTO_DIR, 'files.proto'), message: 'amber.RegFileEntry' };

/** One open file description of files.img: its id, its kind's fd type and its kind's member. */
export interface FileDescription {
  readonly id: number;
  /** FdType */
  readonly type: number;
  /** The member's name in FileEntry ('reg', 'pipe' ...); absent when no loaded plugin declares the member it had. */
  readonly member?: string;
  readonly entry?: object;
}

const OWN_FIELDS = new Set(['id', 'type']);

/**
 * The member of a description, with its kind's type. The one place a member gets its type: the
 * codec wrote and read it with the message that same member declares (FileKind.member), so it
 * has that shape.
 */
function typed<E extends object>(entry: object): E {
  return entry as E;
}

/**
 * Every open file description of a dump, whoever found it (an fd, a file mapping, the exe link),
 * written once to files.img; on restore, looked up by id. Kinds see only their own member; this
 * wraps it in FileEntry (type, id, member) and unwraps it.
 */
export class FileRegistry {
  private readonly byId = new Map<number, FileDescription>();
  private nextOwnId = 1 << 24;

  /** Decoded FileEntry messages: `id`, `type` and the one member each carries. */
  constructor(entries: readonly FileEntry[] = []) {
    for (const e of entries) {
      const members = Object.entries(e).filter((kv): kv is [string, object] => !OWN_FIELDS.has(kv[0]) && typeof kv[1] === 'object' && kv[1] !== null);
      if (members.length > 1) {
        throw new AmberError(`files.img: file id ${e.id} carries ${members.length} members (${members.map(([k]) => k).join(', ')}), not one (corrupt image)`);
      }
      const [member] = members;
      this.byId.set(e.id, { id: e.id, type: e.type, ...(member ? { member: member[0], entry: member[1] } : {}) });
    }
  }

  /** The descriptions of an image set (none when it has no files.img: a memory-only dump). */
  static read(store: ImageStore): FileRegistry {
    return new FileRegistry(store.has('files') ? store.read<FileEntry>('files', 'files').entries : []);
  }

  /** A description a kind dumped under `id`. */
  add<E extends object>(kind: FileKind<E>, id: number, entry: E): number {
    this.byId.set(id, { id, type: kind.fdType, member: kind.member.name, entry });
    return id;
  }

  /** A regular file that no fd holds (a mapped file, the executable): gets an id of its own. */
  addRegular(name: string, flags: number, extra: Partial<RegFileEntry> = {}): number {
    for (const d of this.byId.values()) {
      const reg = this.regularOrNot(d);
      if (reg && reg.name === name && reg.flags === flags && reg.pos === 0n && d.id >= 1 << 24) return d.id;
    }
    const id = this.nextOwnId++;
    const reg: RegFileEntry = { id, flags, pos: 0n, fown: NO_FOWN, name, buildId: [], ...extra };
    this.byId.set(id, { id, type: FdType.REG, member: REG_MEMBER.name, entry: reg });
    return id;
  }

  get(id: number): FileDescription {
    const d = this.byId.get(id);
    if (!d) throw new AmberError(`files.img holds no file with id ${id} (corrupt or partial image)`);
    return d;
  }

  /** The member of description `id` if it is one of `kind`'s, else undefined. */
  member<E extends object>(kind: FileKind<E>, id: number): E | undefined {
    const d = this.get(id);
    return d.type === kind.fdType && d.member === kind.member.name && d.entry ? typed<E>(d.entry) : undefined;
  }

  /** The member of description `id`, which must be one of `kind`'s. */
  entry<E extends object>(kind: FileKind<E>, id: number): E {
    const e = this.member(kind, id);
    if (e) return e;
    const d = this.get(id);
    const has = d.member ? `its member is ${d.member}` : 'it has no member a loaded plugin knows';
    throw new AmberError(`files.img: file id ${id} (type ${d.type}) is not a ${kind.name} description (${kind.member.name}): ${has} (corrupt image)`);
  }

  regular(id: number): RegFileEntry {
    const d = this.get(id);
    const reg = this.regularOrNot(d);
    if (!reg) throw new AmberError(`file id ${id} is not a regular file (type ${d.type})`);
    return reg;
  }

  private regularOrNot(d: FileDescription): RegFileEntry | undefined {
    return d.type === FdType.REG && d.member === REG_MEMBER.name && d.entry ? typed<RegFileEntry>(d.entry) : undefined;
  }

  /** The FileEntry messages of files.img, by id. */
  entries(): FileEntry[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id).map((d) => ({ id: d.id, type: d.type, ...(d.member && d.entry ? { [d.member]: d.entry } : {}) }));
  }
}

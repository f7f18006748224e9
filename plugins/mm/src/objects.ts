import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import {
  addressOf, copyMapped, F_SEALS, InodeKey, KernelError, O, PAGE_SIZE, PagemapFlag, registerImageType, SEEK_CUR, SEEK_DATA, SEEK_HOLE,
  SEEK_SET, SYS, syscall, syscallRaw, takeFd,
  type DumpContext, type IdentityHolder, type ImageStore, type MapsEntry, type PagemapEntry,
} from '@amber/core';
import type { MemoryObjectRef } from './vmas';
import type { ShmemObject } from './generated';

/**
 * Memory that mappings share with other mappings or processes: shared anonymous memory, memfds
 * and files deleted while mapped. Each is dumped once, under an id (shmem.img + its own
 * pagemap-shmem-<id>.img and pages file); VMAs refer to it by VmaEntry.amber_object.
 */
export type { ShmemObject };

export const OBJECT_KIND = { anon: 1, memfd: 2, deleted: 3 } as const;
export const kindName = (k: number): MemoryObjectRef['kind'] => (k === 1 ? 'anon' : k === 2 ? 'memfd' : 'deleted');

registerImageType({
  type: 'mm-shmem', magic: 0x4d454d31, protoFile: path.resolve(__dirname, '..', 'proto', 'shmem.proto'),
  message: 'amber.mm.ShmemObject',
  amberOnly: 'CRIU finds a shared mapping\'s object from the VMA alone (shmid; memfd.img for memfds); amber records each object\'s kind, size and identity here',
});

const SHMEM_IMAGE = 'shmem';
export const objectPagemapName = (id: number) => `pagemap-shmem-${id}`;

export function readObjects(store: ImageStore): Map<number, ShmemObject> {
  const out = new Map<number, ShmemObject>();
  if (!store.has(SHMEM_IMAGE)) return out;
  for (const o of store.read<ShmemObject>('mm-shmem', SHMEM_IMAGE).entries) out.set(o.id, o);
  return out;
}

/**
 * The object's key in the restore's registry of shared inodes (and for compare's identity
 * check): the same key the fs plugin gives a memfd or deleted file it holds as an fd.
 */
export function objectKey(o: ShmemObject): string {
  if (o.ino === undefined) return `mm-object:${o.id}`;
  if (o.kind === OBJECT_KIND.memfd) return InodeKey.memfd(o.ino);
  if (o.kind === OBJECT_KIND.anon) return InodeKey.sharedAnon(o.ino);
  return o.dev === undefined ? `mm-object:${o.id}` : InodeKey.deletedFile(o.dev, o.ino);
}

function dumpKey(kind: MemoryObjectRef['kind'], dev: bigint, ino: bigint): string {
  if (kind === 'memfd') return InodeKey.memfd(ino);
  if (kind === 'anon') return InodeKey.sharedAnon(ino);
  return InodeKey.deletedFile(dev, ino);
}

function withFd<T>(link: string, use: (fd: number) => T): T {
  const fd = openSync(link, 'r');
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/** The name /proc/PID/maps shows for a mapping of the object. */
export function mapsName(o: ShmemObject): string {
  if (o.kind === OBJECT_KIND.anon) return '/dev/zero (deleted)';
  if (o.kind === OBJECT_KIND.memfd) return `/memfd:${o.name} (deleted)`;
  return `${o.name} (deleted)`;
}

/** What kind of object a line of /proc/PID/maps maps, if any. */
export function objectKind(m: MapsEntry): MemoryObjectRef['kind'] | 'sysv' | undefined {
  // a SysV segment's inode number is its shmid, and 0 is one
  if (m.path.startsWith('/SYSV') && m.perms[3] === 's') return 'sysv';
  if (!m.inode || !m.path.endsWith(' (deleted)')) return undefined;
  if (m.path === '/dev/zero (deleted)' && m.perms[3] === 's') return 'anon';
  if (m.path.startsWith('/memfd:')) return 'memfd';
  return 'deleted';
}

const hexRange = (m: MapsEntry) => `${m.start.toString(16)}-${m.end.toString(16)}`;

/** Collects the objects of one dump, keyed by the identity of the file /proc/PID/map_files opens. */
export class ObjectDumper {
  private readonly byInode = new Map<string, ShmemObject>();
  private readonly offBuf = Buffer.alloc(8);

  constructor(private readonly ctx: DumpContext) {}

  get count(): number {
    return this.byInode.size;
  }

  /** The object a mapping belongs to, dumping it the first time it is seen. */
  ref(pid: number, m: MapsEntry, kind: MemoryObjectRef['kind']): MemoryObjectRef {
    const link = `/proc/${pid}/map_files/${hexRange(m)}`;
    const st = statSync(link, { bigint: true });
    const key = `${st.dev}:${st.ino}`;
    let o = this.byInode.get(key);
    if (!o) {
      // one id for the inode in the whole dump: the fs plugin may hold the same memfd as an fd
      const { inode, isNew } = this.ctx.inodes.meet(dumpKey(kind, st.dev, st.ino));
      o = { id: inode.id, kind: OBJECT_KIND[kind], size: st.size, pagesId: inode.pagesId ?? 0, ino: st.ino, dev: st.dev };
      const name = m.path.slice(0, -' (deleted)'.length);
      if (kind === 'memfd') o.name = name.slice('/memfd:'.length);
      if (kind === 'deleted') {
        o.name = name;
        o.mode = Number(st.mode) & 0o7777;
        o.uid = Number(st.uid);
        o.gid = Number(st.gid);
      }
      if (isNew) {
        this.dumpContents(link, o, kind === 'deleted' ? heldDescription(pid, st.dev, st.ino) : undefined);
        inode.pagesId = o.pagesId;
      } else if (kind === 'memfd') {
        o.seals = withFd(link, (fd) => syscall('fcntl(F_GET_SEALS)', SYS.fcntl, [fd, F_SEALS.GET], { detail: link }));
      }
      this.byInode.set(key, o);
    }
    return { id: o.id, kind };
  }

  finish(): void {
    if (this.byInode.size) this.ctx.store.write('mm-shmem', SHMEM_IMAGE, [...this.byInode.values()]);
  }

  /**
   * Copies the object's data ranges (SEEK_DATA/SEEK_HOLE skips holes) into its pages file, in the
   * kernel. Through the task's own description (held) when there is one, and from a mapping of it,
   * so that a task watching the file sees nothing; else through a new open of map_files, which a
   * watcher sees (open, access, close), as there is no other way to reach a file only mapped.
   */
  private dumpContents(link: string, o: ShmemObject, held?: number): void {
    const src = held ?? openSync(link, 'r');
    // the task's own description (held) has an offset the task sees: SEEK_DATA/HOLE move it
    const pos = held === undefined ? undefined : syscall('lseek(SEEK_CUR)', SYS.lseek, [held, 0, SEEK_CUR], { detail: link });
    const { pagesId, path: pagesPath } = this.ctx.createPages();
    o.pagesId = pagesId;
    const dst = openSync(pagesPath, constants.O_WRONLY | constants.O_NOFOLLOW);
    const runs: PagemapEntry[] = [];
    let written = 0;
    try {
      if (o.kind === OBJECT_KIND.memfd) o.seals = syscall('fcntl(F_GET_SEALS)', SYS.fcntl, [src, F_SEALS.GET], { detail: link });
      const size = BigInt(fstatSync(src, { bigint: true }).size);
      const page = BigInt(PAGE_SIZE);
      for (let pos = 0n; pos < size; ) {
        const data = syscallRaw(SYS.lseek, [src, pos, SEEK_DATA]);
        if (data === -6 /* ENXIO: no data after pos */) break;
        if (data < 0) throw new KernelError('lseek(SEEK_DATA)', -data, undefined, link);
        const hole = BigInt(syscall('lseek(SEEK_HOLE)', SYS.lseek, [src, data, SEEK_HOLE], { detail: link }));
        const start = BigInt(data);
        const nrPages = Number((hole - start + page - 1n) / page);
        if (held === undefined) this.copy(src, dst, start, hole - start, link);
        else copyMapped(src, start, hole - start, dst, link);
        const padded = written + nrPages * PAGE_SIZE;
        syscall('ftruncate', SYS.ftruncate, [dst, padded]);
        syscall('lseek', SYS.lseek, [dst, padded, 0]);
        written = padded;
        runs.push({ vaddr: start, nrPages, flags: PagemapFlag.PRESENT });
        pos = start + BigInt(nrPages) * page;
      }
    } finally {
      if (pos !== undefined) syscallRaw(SYS.lseek, [src, pos, SEEK_SET]);
      closeSync(src);
      closeSync(dst);
    }
    this.ctx.store.write('pagemap', objectPagemapName(o.id), runs, { head: { pagesId: o.pagesId } });
    this.ctx.count('shmem pages', written / PAGE_SIZE);
  }

  private copy(src: number, dst: number, from: bigint, len: bigint, link: string): void {
    this.offBuf.writeBigInt64LE(from);
    for (let left = len; left > 0n; ) {
      const chunk = left > 1n << 30n ? 1n << 30n : left;
      const n = syscall('sendfile', SYS.sendfile, [dst, src, addressOf(this.offBuf), chunk], { detail: link });
      if (n === 0) break; // end of file inside the last page
      left -= BigInt(n);
    }
  }
}

/**
 * amber's copy of a readable description the task holds on dev:ino, if any (stat through
 * /proc/PID/fd raises no event; opening the file would).
 */
function heldDescription(pid: number, dev: bigint, ino: bigint): number | undefined {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds) {
    const st = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true, throwIfNoEntry: false });
    if (!st || st.dev !== dev || st.ino !== ino) continue;
    let flags: number;
    try {
      flags = parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '1', 8);
    } catch {
      continue;
    }
    if ((flags & O.ACCMODE) === O.WRONLY || flags & O.PATH) continue;
    try {
      return takeFd(pid, Number(fd));
    } catch {
      continue;
    }
  }
  return undefined;
}

/** Every live mapping of a dumped object in the task, with the inode it maps now (for compare). */
export function objectHolders(pid: number, vmas: { start: bigint; end: bigint; amberObject?: number }[], objects: Map<number, ShmemObject>): IdentityHolder[] {
  const out: IdentityHolder[] = [];
  for (const v of vmas) {
    const o = objects.get(v.amberObject ?? 0);
    if (!o) continue;
    let inode = 'not mapped';
    try {
      const st = statSync(`/proc/${pid}/map_files/${v.start.toString(16)}-${v.end.toString(16)}`, { bigint: true });
      inode = `${st.dev}:${st.ino}`;
    } catch {
      // the mapping is gone or moved: the maps comparison says so
      continue;
    }
    out.push({ pid, where: `mapping 0x${v.start.toString(16)}`, key: objectKey(o), inode });
  }
  return out;
}

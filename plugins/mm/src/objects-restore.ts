import {
  AmberError, F_SEALS, MAP, MFD, O, openAsTask, PAGE_SIZE, PROT, recreateUnlinkedFile, SEEK_SET,
  type PagemapEntry, type RemoteSyscall, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { OBJECT_KIND, objectKey, objectPagemapName, type ShmemObject } from './objects';
import { transfer } from './transfer';
import type { VmaEntry } from './vmas';

const hex = (v: bigint) => v.toString(16);

interface Created {
  /** fd in the task (memfd, deleted file), or -1 */
  fd: number;
  /** a mapping of the whole object that later mappings open through /proc/PID/map_files */
  owner?: { start: bigint; end: bigint; temporary: boolean };
  sealsPending: boolean;
}

/**
 * Recreates the memory objects of shmem.img inside a task and maps them. Shared anonymous memory
 * is created by an anonymous MAP_SHARED mmap (so it is the same kind of object as before, shown
 * as /dev/zero) and filled by the task's own preadv; an fd of it, opened through
 * /proc/self/map_files, serves every further mapping. memfds and deleted files are recreated as
 * files and filled by sendfile in the task. Each object is made once per restore: the core's
 * registry of shared inodes hands it to every other task that maps it, and a memfd the fs
 * plugin already made for an fd is the one mapped.
 */
export class ObjectRestorer {
  private readonly created = new Map<number, Created>();
  private readonly remote: RemoteSyscall;

  constructor(
    private readonly ctx: RestoreContext,
    private readonly task: RestoreTask,
    private readonly objects: Map<number, ShmemObject>,
    private readonly vmas: VmaEntry[],
  ) {
    this.remote = task.remote;
  }

  /** The object as another holder already made it (an fd of it here), if one did. */
  private fetched(o: ShmemObject): Created | undefined {
    const fd = this.ctx.inodes.fetch(objectKey(o), this.task);
    if (fd === undefined) return undefined;
    const c: Created = { fd, sealsPending: false };
    this.created.set(o.id, c);
    return c;
  }

  /** An fd of the shared anonymous memory just mapped here, for later mappings and other tasks. */
  private holdAnon(o: ShmemObject, c: Created): void {
    const path = `/proc/self/map_files/${hex(c.owner!.start)}-${hex(c.owner!.end)}`;
    c.fd = openAsTask(this.task, path, O.RDWR | O.CLOEXEC, { identity: 'current' });
    this.ctx.inodes.hold(objectKey(o), this.task, c.fd);
  }

  map(v: VmaEntry, prot: number): void {
    const o = this.objects.get(v.amberObject ?? 0);
    if (!o) throw new AmberError(`mapping 0x${hex(v.start)} refers to memory object ${v.amberObject}, which shmem.img lacks`);
    const r = this.remote;
    const flags = (v.flags & ~(MAP.ANONYMOUS | MAP.GROWSDOWN)) | MAP.FIXED;
    const what = `VMA 0x${hex(v.start)}-0x${hex(v.end)}`;
    const len = v.end - v.start;
    let c = this.created.get(o.id) ?? this.fetched(o);
    if (o.kind === OBJECT_KIND.anon) {
      if (!c && v.pgoff === 0n && len === o.size) {
        r.resetData();
        r.sys.with(`${what}, shared anonymous`).mmap(v.start, len, prot | PROT.WRITE, MAP.SHARED | MAP.ANONYMOUS | MAP.FIXED | (v.flags & MAP.NORESERVE), -1, 0);
        c = { fd: -1, owner: { start: v.start, end: v.end, temporary: false }, sealsPending: false };
        this.created.set(o.id, c);
        this.fillMapping(o, v.start);
        this.holdAnon(o, c);
        if (!(prot & PROT.WRITE)) r.sys.with(what).mprotect(v.start, len, prot);
        return;
      }
      c ??= this.createAnon(o);
      r.resetData();
      r.sys.with(what).mmap(v.start, len, prot, flags, c.fd, v.pgoff);
      return;
    }
    c ??= this.createFile(o);
    r.resetData();
    r.sys.with(what).mmap(v.start, len, prot, flags, c.fd, v.pgoff);
  }

  /** Seals left for after the writable mappings, temporary owners unmapped, fds closed,  */
  finish(): void {
    const r = this.remote;
    for (const [id, c] of this.created) {
      const o = this.objects.get(id)!;
      if (c.sealsPending) r.sys.fcntl(c.fd, F_SEALS.ADD, o.seals ?? 0);
      if (c.owner?.temporary) r.sys.munmap(c.owner.start, c.owner.end - c.owner.start);
      if (c.fd >= 0) r.sys.close(c.fd);
    }
  }

  private createAnon(o: ShmemObject): Created {
    const r = this.remote;
    r.resetData();
    const start = BigInt(r.sys.with('shared anonymous').mmap(0, o.size, PROT.READ | PROT.WRITE, MAP.SHARED | MAP.ANONYMOUS, -1, 0));
    const c: Created = { fd: -1, owner: { start, end: start + o.size, temporary: true }, sealsPending: false };
    this.created.set(o.id, c);
    this.fillMapping(o, start);
    this.holdAnon(o, c);
    return c;
  }

  private createFile(o: ShmemObject): Created {
    const r = this.remote;
    r.resetData();
    let fd: number;
    if (o.kind === OBJECT_KIND.memfd) {
      fd = r.sys.memfd_create(o.name ?? '', MFD.CLOEXEC | MFD.ALLOW_SEALING);
      r.sys.ftruncate(fd, o.size);
      this.fillFile(o, fd);
    } else {
      // Made as the task, with its owner, out of reach until filled (core's recreateUnlinkedFile);
      // mapped through an fd opened by its old name, so the mappings read "<path> (deleted)".
      const name = o.name ?? '';
      // amber's pages file is opened first, with amber's credentials: the task may not read images
      const pages = this.runs(o).length ? this.openPages(o) : -1;
      const made = recreateUnlinkedFile(
        this.task, { path: name, uid: o.uid ?? this.task.creds?.fsuid ?? 0, gid: o.gid ?? this.task.creds?.fsgid ?? 0, mode: o.mode ?? 0o600, tag: `mm${o.id}` },
        (writer) => {
          r.sys.ftruncate(writer, o.size);
          this.fillFile(o, writer, pages);
        },
        (path) => openAsTask(this.task, path, O.RDWR | O.CLOEXEC),
      );
      if (pages >= 0) r.sys.close(pages);
      r.sys.close(made.writer);
      fd = made.opened;
    }
    const writableShared = this.vmas.some((v) => v.amberObject === o.id && v.flags & MAP.SHARED && v.prot & PROT.WRITE);
    const c: Created = { fd, sealsPending: false };
    if (o.seals) {
      if (writableShared) c.sealsPending = true;
      else r.sys.fcntl(fd, F_SEALS.ADD, o.seals);
    }
    this.created.set(o.id, c);
    this.ctx.inodes.hold(objectKey(o), this.task, fd);
    return c;
  }

  private runs(o: ShmemObject): PagemapEntry[] {
    return this.ctx.store.read<PagemapEntry>('pagemap', objectPagemapName(o.id)).entries;
  }

  private openPages(o: ShmemObject): number {
    return openAsTask(this.task, this.ctx.store.pagesPath(o.pagesId), O.RDONLY | O.CLOEXEC, { identity: 'current' });
  }

  private fillMapping(o: ShmemObject, base: bigint): void {
    const runs = this.runs(o);
    if (!runs.length) return;
    const fd = this.openPages(o);
    transfer(this.remote, 'preadv', fd, runs.map((p) => ({ addr: base + p.vaddr, len: p.nrPages * PAGE_SIZE })));
    this.remote.sys.close(fd);
  }

  /** Fills fd from the object's pages (pages: an fd of its pages file in the task, or -1 to open and close one here). */
  private fillFile(o: ShmemObject, fd: number, pagesFd = -1): void {
    const runs = this.runs(o);
    if (!runs.length) return;
    const r = this.remote;
    const pages = pagesFd >= 0 ? pagesFd : this.openPages(o);
    let pagesOff = 0n;
    for (const run of runs) {
      let len = BigInt(run.nrPages * PAGE_SIZE);
      if (run.vaddr + len > o.size) len = o.size - run.vaddr; // the last page of a file is partial
      r.sys.lseek(fd, run.vaddr, SEEK_SET);
      r.resetData();
      const off = r.stage(Buffer.alloc(8));
      r.memory.write(off, bigintLE(pagesOff));
      for (let left = len; left > 0n; ) {
        const n = r.sys.sendfile(fd, pages, off, left > 1n << 30n ? 1n << 30n : left);
        if (n === 0) throw new AmberError(`pages file of memory object ${o.id} is short`);
        left -= BigInt(n);
      }
      pagesOff += BigInt(run.nrPages * PAGE_SIZE);
    }
    if (pagesFd < 0) r.sys.close(pages);
  }
}

function bigintLE(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

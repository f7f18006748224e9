import { readFileSync } from 'node:fs';
import {
  ImageError,
  F, FdType, InodeKey, NO_FOWN, O, PAGE_SIZE, PagemapFlag, SEEK_SET, close, fcntl, takeFd, writeAll,
  type CompareContext, type DumpContext, type DumpTask, type FdinfoEntry, type IdentityHolder, type TaskKobjIdsEntry, type FdResource, type FieldDifference, type FileKind,
  type PagemapEntry, type PagemapHead, type RestoreContext, type RestoreTask, type DumpedInodes, type SharedInodes, type TaskFds,
} from '@amber/core';
import type { MemfdFileEntry } from './generated';
import { FS_FILES_PROTO, growingImage, type MemfdInodeEntry } from './images';
import { readGhostData } from './ghost-extents';

const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
const F_SEAL_SEAL = 1;

const nameOf = (link: string) => link.replace(/^\/memfd:/, '').replace(/ \(deleted\)$/, '');

function sealsOf(fd: FdResource): number {
  const copy = takeFd(fd.pid, fd.fd);
  try {
    return fcntl(copy, F.GET_SEALS, 0, 'fcntl(F_GET_SEALS)');
  } finally {
    close(copy);
  }
}

/**
 * memfds: the inode (name, seals, contents) once in memfd.img, its contents as a shmem pagemap
 * and pages file the way CRIU stores them; each description then opens that inode again.
 */
export class MemfdKind implements FileKind<MemfdFileEntry> {
  readonly fdType = FdType.MEMFD;
  readonly name = 'memfd';
  readonly member = { field: 20, name: 'memfd', protoFile: FS_FILES_PROTO, message: 'amberfs.MemfdFileEntry' };

  /** The core's one registry of inodes, of a dump and of a restore (the mm plugin's too), and its fd service. */
  constructor(private readonly dumped: DumpedInodes, private readonly shared: SharedInodes, private readonly fds: TaskFds) {}

  claims(fd: FdResource): boolean {
    return fd.link.startsWith('/memfd:');
  }

  dumpDescription(ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): MemfdFileEntry {
    // the core's one registry: a memfd the mm plugin met as a mapping is the same inode, dumped once
    const { inode, isNew } = this.dumped.meet(InodeKey.memfd(fd.ino));
    const shmid = inode.id;
    const written = ctx.state('fs:memfd:inodes', () => new Set<number>());
    if (!written.has(shmid)) {
      written.add(shmid);
      if (isNew) inode.pagesId = this.dumpContents(ctx, fd, shmid);
      growingImage<MemfdInodeEntry>(ctx, 'memfd-inode', 'memfd').add({
        name: nameOf(fd.link), uid: 0, gid: 0, size: fd.size, shmid, seals: sealsOf(fd), inodeId: fd.ino,
      });
    }
    const memfd: MemfdFileEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, pos: fd.info.pos, fown: NO_FOWN, inodeId: shmid };
    return memfd;
  }

  /** The contents as a shmem pagemap and a pages file; returns the pages file's id. */
  private dumpContents(ctx: DumpContext, fd: FdResource, shmid: number): number {
    // by its data runs, as a ghost file is read (unseen, and without faulting in its holes)
    const ghost = readGhostData(fd.pid, fd.fd, Infinity, () => new Error('unreachable: no limit'));
    const data = Buffer.alloc(Number(ghost.size));
    for (const e of ghost.extents) e.data.copy(data, Number(e.off));
    const pages = Math.ceil(data.length / PAGE_SIZE);
    const { pagesId } = ctx.createPages(Buffer.concat([data, Buffer.alloc(pages * PAGE_SIZE - data.length)]));
    const runs: PagemapEntry[] = pages ? [{ vaddr: 0n, nrPages: pages, flags: PagemapFlag.PRESENT }] : [];
    ctx.store.write('pagemap', `pagemap-shmem-${shmid}`, runs, { head: { pagesId } satisfies PagemapHead });
    ctx.count('memfd bytes', data.length);
    return pagesId;
  }

  /**
   * Each description opens the inode again (its own offset and flags); the inode itself is made
   * once and shared through the core's registry, so a mapping of the memfd (the mm plugin) or
   * another task gets the same one.
   */
  openDescription(ctx: RestoreContext, task: RestoreTask, memfd: MemfdFileEntry): number {
    const inodes = ctx.state('fs:memfd:read', () => ctx.store.read<MemfdInodeEntry>('memfd-inode', 'memfd').entries);
    const inode = inodes.find((i) => i.shmid === memfd.inodeId);
    if (!inode) throw new ImageError(`memfd.img: has no memfd ${memfd.inodeId} (files.img refers to it)`);
    const key = InodeKey.memfd(inode.inodeId);
    let held = this.shared.fetch(key, task);
    if (held === undefined) {
      held = this.createInode(ctx, task, inode);
      this.shared.hold(key, task, held);
    }
    const fd = this.fds.open(task, `/proc/self/fd/${held}`, memfd.flags & (O.ACCMODE | O.APPEND | O.NONBLOCK | O.LARGEFILE));
    task.remote.sys.close(held);
    if (memfd.pos) task.remote.sys.lseek(fd, memfd.pos, SEEK_SET);
    return fd;
  }

  private createInode(ctx: RestoreContext, task: RestoreTask, inode: MemfdInodeEntry): number {
    const shmid = inode.shmid;
    const remote = task.remote;
    remote.resetData();
    // A memfd made without MFD_ALLOW_SEALING starts (and stays) sealed with F_SEAL_SEAL alone.
    const sealable = inode.seals !== F_SEAL_SEAL;
    const fd = remote.sys.memfd_create(inode.name, MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0));
    const pm = ctx.store.read<PagemapEntry>('pagemap', `pagemap-shmem-${shmid}`);
    const pagesId = (pm.head as PagemapHead).pagesId;
    // runs as whoever dumped the inode wrote them (the mm plugin skips holes): pages one after another
    const pages = pm.entries.length ? readFileSync(ctx.store.pagesPath(pagesId)) : Buffer.alloc(0);
    let from = 0;
    for (const run of pm.entries) {
      const len = Math.min(run.nrPages * PAGE_SIZE, Number(inode.size - run.vaddr));
      if (len > 0) writeAll(remote, fd, pages.subarray(from, from + len), `memfd ${inode.name}`, run.vaddr);
      from += run.nrPages * PAGE_SIZE;
    }
    remote.sys.ftruncate(fd, inode.size);
    if (sealable && inode.seals) remote.sys.with(inode.name).fcntl(fd, F.ADD_SEALS, inode.seals);
    return fd;
  }

  compareDescription(live: FdResource, memfd: MemfdFileEntry): FieldDifference[] {
    return live.info.pos === memfd.pos ? [] : [{ what: 'offset', expected: `${memfd.pos}`, actual: `${live.info.pos}` }];
  }
}

/** Every live fd that was a memfd at dump time, with the inode it holds now (for compare). */
export function memfdHolders(ctx: CompareContext, kind: MemfdKind): IdentityHolder[] {
  if (!ctx.store.has('memfd')) return [];
  const inodes = ctx.store.read<MemfdInodeEntry>('memfd-inode', 'memfd').entries;
  const out: IdentityHolder[] = [];
  for (const pid of ctx.pids) {
    const ids = ctx.store.read<TaskKobjIdsEntry>('ids', `ids-${pid}`).entries[0];
    const live = new Map(ctx.liveFds(pid).map((f) => [f.fd, f]));
    for (const e of ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${ids.filesId}`).entries) {
      const memfd = ctx.files.member(kind, e.id);
      const inode = memfd && inodes.find((i) => i.shmid === memfd.inodeId);
      const l = live.get(e.fd);
      if (!inode || !l) continue;
      out.push({ pid, where: `fd ${e.fd}`, key: InodeKey.memfd(inode.inodeId), inode: `${l.dev}:${l.ino}` });
    }
  }
  return out;
}

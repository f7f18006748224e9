import { AmberError, FdType, type FileRegistry, type ImageStore, type PagemapEntry, type VmaEntry } from '@amber/core';
import { OBJECT_KIND, objectPagemapName, type ShmemObject } from './objects';
import { VMA } from './vmas';

/*
 * Shared anonymous memory as CRIU 4.x stores it, read as one of amber's memory objects.
 *
 * CRIU 4.x dumps a MAP_SHARED|MAP_ANONYMOUS area as a memfd: the VMA is FILE_SHARED|MEMFD with
 * `shmid` naming a MEMFD description in files.img, whose inode (memfd.img) is named "/dev/zero"
 * and carries the size and the pages' key: pagemap-shmem-<inode shmid>.img and its pages file.
 * CRIU before 4 (and 4.x when memfd cannot be used) kept it as ANON_SHARED with `shmid` the inode
 * number itself and the same pagemap-shmem-<shmid>; its size is the furthest any mapping reaches.
 * Either way the task had shared anonymous memory, so amber restores it as that (CRIU itself gives
 * the task a memfd instead). A memfd the program made itself (another name) is not read yet.
 */

interface CriuMemfdInode {
  name: string;
  size: bigint | number;
  shmid: number;
  inodeId: bigint | number;
}

/** amber's own object ids are small: these stay clear of them (and of each other, by shmid). */
const pagemapOf = (store: ImageStore, shmid: number) => store.read<PagemapEntry>('pagemap', objectPagemapName(shmid));

/**
 * Marks each of the VMAs that is CRIU's shared anonymous memory with an object of `objects`
 * (added there), as amber's own dump would have; leaves every other VMA alone.
 */
export function adoptCriuSharedAnon(store: ImageStore, files: FileRegistry, vmasOfTasks: VmaEntry[][], objects: Map<number, ShmemObject>): void {
  let inodes: Map<number, CriuMemfdInode> | undefined;
  const inodeOf = (inodeId: number): CriuMemfdInode | undefined => {
    // memfd.img's schema comes with the fs plugin, which reads memfds held as fds
    inodes ??= new Map(store.has('memfd') ? store.read<CriuMemfdInode>('memfd-inode', 'memfd').entries.map((e) => [Number(e.inodeId), e]) : []);
    return inodes.get(inodeId);
  };
  const reaches = new Map<number, bigint>();
  for (const vmas of vmasOfTasks) {
    for (const v of vmas) {
      if (v.amberObject || v.status & VMA.SYSVIPC) continue;
      let shmid: number | undefined;
      let size: bigint | undefined;
      if (v.status & VMA.MEMFD) {
        const d = files.get(Number(v.shmid));
        const inodeId = d.type === FdType.MEMFD && d.member === 'memfd' ? (d.entry as { inodeId?: number }).inodeId : undefined;
        const inode = inodeId === undefined ? undefined : inodeOf(Number(inodeId));
        if (!inode || inode.name !== '/dev/zero') continue; // a memfd of the program's own
        shmid = inode.shmid;
        size = BigInt(inode.size);
      } else if (v.status & VMA.ANON_SHARED) {
        shmid = Number(v.shmid);
        const reach = v.pgoff + (v.end - v.start);
        if (reach > (reaches.get(shmid) ?? 0n)) reaches.set(shmid, reach);
      } else {
        continue;
      }
      if (!objects.has(shmid)) {
        if (!store.has(objectPagemapName(shmid))) throw new AmberError(`VMA 0x${v.start.toString(16)}: CRIU's shared memory ${shmid} has no ${objectPagemapName(shmid)}.img`);
        const head = pagemapOf(store, shmid).head as { pagesId: number };
        objects.set(shmid, { id: shmid, kind: OBJECT_KIND.anon, size: size ?? 0n, pagesId: head.pagesId });
      }
      v.amberObject = shmid;
    }
  }
  for (const [shmid, reach] of reaches) {
    const o = objects.get(shmid)!;
    if (BigInt(o.size) < reach) o.size = reach;
  }
}

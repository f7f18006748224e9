import { F } from '../kernel/constants';
import { fetchFd } from '../task/fd-transfer';
import type { Difference, RestoreTask } from './plugin';

/**
 * Registry keys: what the dump saw of an inode, the same whichever plugin found it. memfds and
 * shared anonymous memory live on the kernel's one internal shmem mount, so st_ino names them;
 * a deleted file needs its st_dev too (the low 32 bits, as ghost-file.img keeps it).
 */
export const InodeKey = {
  memfd: (ino: bigint | number) => `memfd:${ino}`,
  sharedAnon: (ino: bigint | number) => `shmem:${ino}`,
  deletedFile: (dev: bigint | number, ino: bigint | number) => `deleted:${BigInt(dev) & 0xffffffffn}:${ino}`,
} as const;

/** An inode several plugins may meet in one dump (a memfd held as an fd and mapped). */
export interface DumpedInode {
  /** Its id among the dump's memory objects: memfd.img's shmid, shmem.img's id, pagemap-shmem-<id>.img. */
  readonly id: number;
  /** The pages file its contents went to, set by whoever dumped them. */
  pagesId?: number;
}

/**
 * The dump's one registry of inodes that several holders share, keyed as the restore's is
 * (InodeKey). The first plugin to meet an inode dumps its contents (pagemap-shmem-<id> and a pages
 * file); every later one, in that plugin or another, refers to the same id.
 */
export class DumpedInodes {
  private readonly byKey = new Map<string, DumpedInode>();
  private readonly taken = new Set<number>();
  private next = 1;

  meet(key: string): { inode: DumpedInode; isNew: boolean } {
    const known = this.byKey.get(key);
    if (known) return { inode: known, isNew: false };
    while (this.taken.has(this.next)) this.next++;
    const inode: DumpedInode = { id: this.next };
    this.taken.add(this.next);
    this.byKey.set(key, inode);
    return { inode, isNew: true };
  }

  /**
   * Takes an id of pagemap-shmem-<id> for an object the kernel numbers itself (a SysV segment, by
   * its shmid, as CRIU names it): false if an object of the dump already has it.
   */
  reserve(id: number): boolean {
    if (this.taken.has(id)) return false;
    this.taken.add(id);
    return true;
  }
}

/**
 * The restore's one registry of inodes that several holders share: a memfd held as an fd and
 * mapped, shared anonymous memory mapped before a fork, in one task or many. Keyed by what the
 * dump saw (e.g. `memfd:<st_ino>`), whichever plugin found it; the first holder to need an
 * object creates it and hands an fd of it here, every later one gets an fd of that same inode.
 * The registry's fds stay open in their tasks until the memory phase is over.
 */
export class SharedInodes {
  private readonly held = new Map<string, { task: RestoreTask; fd: number }>();

  /**
   * @param floorOf the lowest fd number the registry may keep in a task: above every fd of its
   * table, which is being filled meanwhile (a dup3 onto a kept fd would close it).
   */
  constructor(private readonly floorOf: (task: RestoreTask) => number) {}

  /** A new fd in `task` (close-on-exec; the caller closes it) for the object, if it exists yet. */
  fetch(key: string, task: RestoreTask): number | undefined {
    const h = this.held.get(key);
    if (!h) return undefined;
    if (h.task === task) return task.remote.sys.with(key).fcntl(h.fd, F.DUPFD_CLOEXEC, 0);
    return fetchFd(task.remote, h.task.pid, h.fd);
  }

  /** Hands over an fd of a newly created object (the registry keeps a duplicate). */
  hold(key: string, task: RestoreTask, fd: number): void {
    if (this.held.has(key)) return;
    const dup = task.remote.sys.with(key).fcntl(fd, F.DUPFD_CLOEXEC, this.floorOf(task));
    this.held.set(key, { task, fd: dup });
  }

  /** Closes the registry's fds (after the memory phase: every mapping and fd is in place). */
  release(): void {
    for (const { task, fd } of this.held.values()) task.remote.sysRaw.close(fd);
    this.held.clear();
  }
}

/** One holder of a shared object, for compare: the dump's key and the inode it holds now. */
export interface IdentityHolder {
  pid: number;
  /** "fd 4", "mapping 0x7f...": where it is held */
  where: string;
  /** the object as the dump saw it: holders with one key held one inode */
  key: string;
  /** the live st_dev:st_ino */
  inode: string;
}

/**
 * Identity, not only contents: holders that shared an inode at dump time must share one now, and
 * holders of different objects must not.
 */
export function compareIdentities(holders: IdentityHolder[]): Difference[] {
  const out: Difference[] = [];
  const byKey = new Map<string, IdentityHolder[]>();
  for (const h of holders) byKey.set(h.key, [...(byKey.get(h.key) ?? []), h]);
  const ownerOfInode = new Map<string, string>();
  for (const [key, hs] of byKey) {
    const first = hs[0];
    for (const h of hs.slice(1)) {
      if (h.inode !== first.inode) {
        out.push({
          plugin: 'core', pid: h.pid, what: `${h.where}: identity of ${key}`,
          expected: `the inode pid ${first.pid} holds at ${first.where} (${first.inode})`, actual: `another inode (${h.inode})`,
        });
      }
    }
    for (const h of hs) {
      const other = ownerOfInode.get(h.inode);
      if (other && other !== key) {
        out.push({ plugin: 'core', pid: h.pid, what: `${h.where}: identity of ${key}`, expected: 'an inode of its own', actual: `the inode of ${other} (${h.inode})` });
      }
      ownerOfInode.set(h.inode, key);
    }
  }
  return out;
}

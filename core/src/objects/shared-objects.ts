import { injectable } from 'tsyringe';
import { KCMP } from '../kernel/constants';
import { kcmp } from '../kernel/syscalls';
import { addressOf, syscallRaw } from '../kernel/libc';
import { SYS } from '../kernel/constants';

export type SharedKind = keyof typeof KCMP;

interface Holder {
  id: number;
  pid: number;
  idx: number;
}

/**
 * One id per shared kernel object (an open file description, an mm, an fd table...), across every
 * task of a dump. Candidates are grouped by a cheap key and confirmed with kcmp(2), so tasks
 * reaching the same object get the same id. Plugins ask here; they never call kcmp themselves.
 */
@injectable()
export class SharedObjects {
  private nextId = 1;
  private readonly groups = new Map<string, Holder[]>();

  /**
   * The id of the object `kind` that `pid` reaches through `idx` (an fd number for FILE, unused
   * for VM/FILES/FS/SIGHAND). `isNew` is true the first time an object is seen.
   */
  identify(kind: SharedKind, pid: number, idx = 0, cheapKey = ''): { id: number; isNew: boolean } {
    const key = `${kind}:${cheapKey}`;
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = []));
    for (const h of group) {
      if (h.pid === pid && h.idx === idx) return { id: h.id, isNew: false };
      if (h.pid !== pid || kind === 'FILE' || kind === 'EPOLL_TFD') {
        if (kcmp(pid, h.pid, KCMP[kind], idx, h.idx) === 0) {
          group.push({ id: h.id, pid, idx });
          return { id: h.id, isNew: false };
        }
      }
    }
    const id = this.nextId++;
    group.push({ id, pid, idx });
    return { id, isNew: true };
  }

  /**
   * Which of `candidates` (fds of `holder`, by default `pid` itself) is the file that epoll fd
   * `epfd` of `pid` watches under target number `tfd` (KCMP_EPOLL_TFD): the number in the epoll's
   * fdinfo may since have been closed, or reused for another file, while a dup of the target
   * stays open, here or in another task.
   */
  epollTarget(pid: number, epfd: number, tfd: number, candidates: number[], holder = pid): number | undefined {
    const slot = Buffer.alloc(12); // struct kcmp_epoll_slot { u32 efd, tfd, toff }
    slot.writeUInt32LE(epfd, 0);
    slot.writeUInt32LE(tfd, 4);
    for (const fd of candidates) {
      if (syscallRaw(SYS.kcmp, [holder, pid, KCMP.EPOLL_TFD, fd, addressOf(slot)]) === 0) return fd;
    }
    return undefined;
  }
}

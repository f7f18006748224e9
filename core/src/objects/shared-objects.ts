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

/** kcmp(2)'s answer for two objects of one kind: 0 same, 1 first is less, 2 greater, 3 different but unordered. */
export type ObjectOrder = (kind: SharedKind, pid1: number, idx1: number, pid2: number, idx2: number) => number;

const byKcmp: ObjectOrder = (kind, pid1, idx1, pid2, idx2) => kcmp(pid1, pid2, KCMP[kind], idx1, idx2);

/** Objects of one cheap key: who was asked about, and one holder per object in the kernel's order. */
interface Group {
  seen: Map<string, number>;
  sorted: Holder[];
  /** the kernel could not order two of them: searched one by one */
  unordered?: boolean;
}

/**
 * One id per shared kernel object (an open file description, an mm, an fd table...), across every
 * task of a dump. Candidates are grouped by a cheap key and confirmed with kcmp(2), so tasks
 * reaching the same object get the same id. Plugins ask here; they never call kcmp themselves.
 */
@injectable()
export class SharedObjects {
  private nextId = 1;
  private readonly groups = new Map<string, Group>();
  private order: ObjectOrder = byKcmp;

  /** For tests: objects compared by `order` (recorded kcmp answers) instead of kcmp. */
  static ordered(order: ObjectOrder): SharedObjects {
    const objects = new SharedObjects();
    objects.order = order;
    return objects;
  }

  /** Whether pid1 (through idx1) and pid2 (through idx2) reach the same object: one kcmp, no id given. */
  same(kind: SharedKind, pid1: number, pid2: number, idx1 = 0, idx2 = 0): boolean {
    return this.order(kind, pid1, idx1, pid2, idx2) === 0;
  }

  /**
   * The id of the object `kind` that `pid` reaches through `idx` (an fd number for FILE, unused
   * for VM/FILES/FS/SIGHAND). `isNew` is true the first time an object is seen.
   */
  identify(kind: SharedKind, pid: number, idx = 0, cheapKey = ''): { id: number; isNew: boolean } {
    const key = `${kind}:${cheapKey}`;
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = { seen: new Map(), sorted: [] }));
    const holder = `${pid}:${idx}`;
    const known = group.seen.get(holder);
    if (known !== undefined) return { id: known, isNew: false };
    // kcmp orders objects (by their obfuscated kernel addresses): a binary search over one
    // holder per object already seen, not a comparison with each of them
    if (group.unordered) return this.unordered(kind, group, holder, pid, idx);
    const { sorted } = group;
    let [lo, hi] = [0, sorted.length];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = this.order(kind, pid, idx, sorted[mid].pid, sorted[mid].idx);
      if (r === 0) return this.found(group, holder, sorted[mid].id);
      if (r === 3) return this.unordered(kind, group, holder, pid, idx);
      if (r === 1) hi = mid;
      else lo = mid + 1;
    }
    const id = this.nextId++;
    sorted.splice(lo, 0, { id, pid, idx });
    group.seen.set(holder, id);
    return { id, isNew: true };
  }

  private found(group: Group, holder: string, id: number): { id: number; isNew: boolean } {
    group.seen.set(holder, id);
    return { id, isNew: false };
  }

  /** A kernel that cannot order two objects: compared with every one then (no order kept). */
  private unordered(kind: SharedKind, group: Group, holder: string, pid: number, idx: number): { id: number; isNew: boolean } {
    group.unordered = true;
    const same = group.sorted.find((h) => this.order(kind, pid, idx, h.pid, h.idx) === 0);
    if (same) return this.found(group, holder, same.id);
    const id = this.nextId++;
    group.sorted.push({ id, pid, idx });
    group.seen.set(holder, id);
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

import { AmberError, ImageStore, PAGE_SIZE, PagemapFlag, parentDirOf, type PagemapHead } from '@amber/core';
import type { PagemapEntry } from './pagemap';

const PAGE = BigInt(PAGE_SIZE);

export class BrokenChainError extends AmberError {}

/** Where some bytes of a task's memory are in an image set: a pages file and an offset in it. */
export interface PagePiece {
  addr: bigint;
  len: number;
  path: string;
  offset: number;
  /** 0 for the image set being restored, 1 for its parent, ... */
  depth: number;
}

interface LocatedEntry {
  start: bigint;
  end: bigint;
  flags: number;
  /** offset in this level's pages file (PRESENT entries) */
  offset: number;
}

/**
 * One image set of an incremental chain, for one task: its pagemap with each PRESENT entry's
 * offset in its pages file (entries are in file order, so a running offset), and its parent.
 */
export class PagemapLevel {
  private parentLevel: PagemapLevel | null | undefined;
  readonly entries: LocatedEntry[];

  private constructor(
    readonly store: ImageStore,
    readonly pid: number,
    readonly head: PagemapHead,
    entries: PagemapEntry[],
    readonly depth: number,
  ) {
    let offset = 0;
    this.entries = entries.map((e) => {
      const flags = e.flags ?? (e.inParent ? PagemapFlag.PARENT : PagemapFlag.PRESENT);
      const located = { start: e.vaddr, end: e.vaddr + BigInt(e.nrPages) * PAGE, flags, offset };
      if (flags & PagemapFlag.PRESENT) offset += e.nrPages * PAGE_SIZE;
      return located;
    });
    this.entries.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  static of(store: ImageStore, pid: number, entries: PagemapEntry[], head: PagemapHead, depth = 0): PagemapLevel {
    return new PagemapLevel(store, pid, head, entries, depth);
  }

  /** The pagemap of `pid` in a complete image set, or undefined when the set has none for it. */
  static open(dir: string, pid: number, depth = 0): PagemapLevel | undefined {
    const store = ImageStore.forRead(dir);
    if (!store.has(`pagemap-${pid}`)) return undefined;
    const pm = store.read<PagemapEntry>('pagemap', `pagemap-${pid}`);
    return new PagemapLevel(store, pid, pm.head as PagemapHead, pm.entries, depth);
  }

  /** Its pages file, checked and joined once: every piece of a task's pages names it. */
  get pagesPath(): string {
    return (this.pagesFile ??= this.store.pagesPath(this.head.pagesId));
  }

  private pagesFile: string | undefined;

  parent(): PagemapLevel | undefined {
    if (this.parentLevel === undefined) {
      const dir = parentDirOf(this.store.dir);
      if (this.depth > 64) throw new BrokenChainError(`${this.store.dir}: the parent chain is longer than 64 image sets (a loop?)`);
      this.parentLevel = dir ? (PagemapLevel.open(dir, this.pid, this.depth + 1) ?? null) : null;
    }
    return this.parentLevel ?? undefined;
  }

  /** Whether every page of [start, end) has its data somewhere in this set or its parents. */
  covers(start: bigint, end: bigint): boolean {
    let cursor = start;
    for (let i = this.firstEnding(cursor); i < this.entries.length && cursor < end; i++) {
      const e = this.entries[i];
      if (e.start > cursor) return false;
      cursor = e.end;
    }
    return cursor >= end;
  }

  /** Appends where the bytes of [start, end) are, following PARENT entries down the chain. */
  locate(start: bigint, end: bigint, out: PagePiece[]): void {
    let cursor = start;
    for (let i = this.firstEnding(cursor); i < this.entries.length && cursor < end; i++) {
      const e = this.entries[i];
      if (e.start > cursor) break;
      const to = e.end < end ? e.end : end;
      if (e.flags & PagemapFlag.PRESENT) {
        out.push({ addr: cursor, len: Number(to - cursor), path: this.pagesPath, offset: e.offset + Number(cursor - e.start), depth: this.depth });
      } else if (e.flags & PagemapFlag.PARENT) {
        const parent = this.parent();
        if (!parent) throw this.missing(cursor, 'has no parent image set (DIR/parent)');
        parent.locate(cursor, to, out);
      } else {
        throw this.missing(cursor, `has an entry with flags ${e.flags} amber cannot read`);
      }
      cursor = to;
    }
    if (cursor < end) throw this.missing(cursor, 'does not hold it');
  }

  private missing(addr: bigint, why: string): BrokenChainError {
    return new BrokenChainError(`pid ${this.pid}: page 0x${addr.toString(16)} is in a parent image, but ${this.store.dir} ${why}`);
  }

  /** Index of the first entry ending after addr. */
  private firstEnding(addr: bigint): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid].end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Where every page of a task's pagemap is: its own pages file for PRESENT entries, the parent
 * chain for PARENT ones.
 */
export function locatePages(level: PagemapLevel): PagePiece[] {
  const out: PagePiece[] = [];
  for (const e of level.entries) level.locate(e.start, e.end, out);
  return out;
}

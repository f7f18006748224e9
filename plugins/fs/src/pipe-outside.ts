import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { AmberError, O, POLL, pollNow, readStat, type DumpContext, type FdResource } from '@amber/core';

/** A restore of a pipe end whose other end stayed outside the tree, with nothing handed in for it. */
export class OutsidePipeError extends AmberError {
  constructor(readonly pid: number, readonly pipeId: number) {
    super(
      `pid ${pid} holds pipe:[${pipeId}], whose other end was outside the dumped tree: it would come back with no ` +
        `other end; hand one in with --inherit-fd fd[N]:pipe:[${pipeId}] (N: an fd of amber's for that end)`,
    );
  }
}

const pipeInode = (link: string) => /^pipe:\[(\d+)\]$/.exec(link)?.[1];
const endOf = (flags: number) => ((flags & O.ACCMODE) === O.RDONLY ? 'r' : (flags & O.ACCMODE) === O.WRONLY ? 'w' : 'rw');

/** The pipe ends the dumped tree holds, by pipe inode. */
function treeEnds(ctx: DumpContext): Map<string, Set<string>> {
  return ctx.state('fs:pipe-ends', () => {
    const ends = new Map<string, Set<string>>();
    for (const t of ctx.tasks) {
      for (const fd of t.fds) {
        const ino = pipeInode(fd.link);
        if (!ino) continue;
        if (!ends.has(ino)) ends.set(ino, new Set());
        for (const e of endOf(fd.info.flags)) ends.get(ino)!.add(e);
      }
    }
    return ends;
  });
}

interface OutsideHolder {
  what: string;
  end: string;
}

/**
 * Whether anything at all holds the pipe's end the tree lacks, as the kernel counts: amber
 * opens its own copy of the tree's end (`fd`, whose end is the only one the tree has), and
 * poll() says POLLHUP on a read end with no writers, POLLERR on a write end with no readers (a
 * non-blocking open of a write end with no readers fails, ENXIO). The copy adds a reader or
 * writer to a side that has one already (the tree's): nobody sees a difference. A holder may
 * be amber itself; false is certain, true only says to look for who.
 */
function otherEndHeld(fd: FdResource, missing: string[]): boolean {
  const readEnd = missing.includes('w');
  let mine: number;
  try {
    mine = openSync(`/proc/${fd.pid}/fd/${fd.fd}`, (readEnd ? O.RDONLY : O.WRONLY) | O.NONBLOCK | O.CLOEXEC);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENXIO' && !readEnd) return false;
    return true; // the kernel would not say: look
  }
  try {
    const revents = pollNow(mine, readEnd ? POLL.IN : POLL.OUT);
    return !(revents & (readEnd ? POLL.HUP : POLL.ERR));
  } finally {
    closeSync(mine);
  }
}

/** The pipe ends process pid holds; none when it is gone or amber may not look. */
function pipeEndsOf(pid: number): (OutsideHolder & { ino: string })[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return []; // gone, or a kernel thread
  }
  const out: (OutsideHolder & { ino: string })[] = [];
  for (const fd of fds) {
    let ino: string | undefined;
    try {
      ino = pipeInode(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      continue;
    }
    if (!ino) continue;
    let comm = '?';
    let flags = 0;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      flags = parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);
    } catch {
      continue; // exited meanwhile
    }
    out.push({ ino, what: `pid ${pid} (${comm}) fd ${fd}`, end: endOf(flags) });
  }
  return out;
}

/** Who outside the tree holds each pipe end: one pass over every other process's fds. */
function outsideHolders(ctx: DumpContext): Map<string, OutsideHolder[]> {
  return ctx.state('fs:pipe-outside-holders', () => {
    const inTree = new Set(ctx.tasks.map((t) => t.pid));
    const holders = new Map<string, OutsideHolder[]>();
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || inTree.has(pid) || pid === process.pid) continue;
      for (const h of pipeEndsOf(pid)) {
        if (!holders.has(h.ino)) holders.set(h.ino, []);
        holders.get(h.ino)!.push({ what: h.what, end: h.end });
      }
    }
    return holders;
  });
}

/**
 * The tree's ancestors outside it, nearest first (the shell or harness that started it, which
 * most often holds the other end of its pipes), up to init.
 */
function ancestorsOf(ctx: DumpContext): number[] {
  return ctx.state('fs:pipe-outside-ancestors', () => {
    const out: number[] = [];
    for (let pid = ctx.tasks[0]?.stat.ppid ?? 0; pid > 1 && out.length < 64; ) {
      out.push(pid);
      try {
        pid = readStat(pid).ppid;
      } catch {
        break; // gone
      }
    }
    return out;
  });
}

/** A holder of an end of pipe ino that the tree lacks: the tree's ancestors are looked at first, then every process. */
function holderOf(ctx: DumpContext, ino: string, missing: string[]): string | undefined {
  const lacking = (h: OutsideHolder & { ino?: string }) => missing.some((e) => h.end.includes(e));
  for (const pid of ancestorsOf(ctx)) {
    if (pid === process.pid) continue;
    const found = pipeEndsOf(pid).find((h) => h.ino === ino && lacking(h));
    if (found) return found.what;
  }
  return outsideHolders(ctx).get(ino)?.find(lacking)?.what;
}

/**
 * A pipe the tree holds only one end of, whose other end a live process outside holds (`prog | cat`
 * dumped without cat): says so once per pipe and returns true. The restore cannot rebuild that
 * end; it needs one handed in (--inherit-fd).
 */
export function otherEndOutside(ctx: DumpContext, fd: FdResource): boolean {
  const ino = pipeInode(fd.link);
  if (!ino) return false;
  const ends = treeEnds(ctx).get(ino) ?? new Set<string>();
  const missing = ['r', 'w'].filter((e) => !ends.has(e));
  // the scan of every process is only to name a holder the kernel says there is
  if (!missing.length || !otherEndHeld(fd, missing)) return false;
  const holder = holderOf(ctx, ino, missing);
  if (!holder) return false;
  const warned = ctx.state('fs:pipe-outside-warned', () => new Set<string>());
  if (!warned.has(ino)) {
    warned.add(ino);
    ctx.log.warn(
      `pid ${fd.pid} fd ${fd.fd} is pipe:[${ino}], whose other end is held outside the dumped tree by ${holder}: ` +
        `restore it with --inherit-fd fd[N]:pipe:[${ino}]`,
    );
  }
  return true;
}

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { AmberError, O, type DumpContext, type FdResource } from '@amber/core';

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

/** Who outside the tree holds each pipe end: one pass over every other process's fds. */
function outsideHolders(ctx: DumpContext): Map<string, OutsideHolder[]> {
  return ctx.state('fs:pipe-outside-holders', () => {
    const inTree = new Set(ctx.tasks.map((t) => t.pid));
    const holders = new Map<string, OutsideHolder[]>();
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || inTree.has(pid) || pid === process.pid) continue;
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue; // gone, or a kernel thread
      }
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
        if (!holders.has(ino)) holders.set(ino, []);
        holders.get(ino)!.push({ what: `pid ${pid} (${comm}) fd ${fd}`, end: endOf(flags) });
      }
    }
    return holders;
  });
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
  const holder = outsideHolders(ctx).get(ino)?.find((h) => missing.some((e) => h.end.includes(e)))?.what;
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

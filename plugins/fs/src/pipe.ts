import { constants } from 'node:fs';
import {
  FdType, NO_FOWN, O, fetchFd, setStatusFlags,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind,
  type RestoreContext, type RestoreTask, type TaskFds,
} from '@amber/core';
import type { FifoEntry, PipeEntry } from './generated';
import { FS_FILES_PROTO } from './images';
import { dumpPipeData, restorePipeData } from './pipe-data';
import { otherEndOutside, OutsidePipeError } from './pipe-outside';

const pipeIdOf = (fd: FdResource) => Number(fd.ino & 0xffffffffn);
const isReadEnd = (flags: number) => (flags & O.ACCMODE) === O.RDONLY;

/** Anonymous pipes: each end is a description; the contents are saved once per pipe. */
export class PipeKind implements FileKind<PipeEntry> {
  readonly fdType = FdType.PIPE;
  readonly name = 'pipe';
  readonly member = { field: 18, name: 'pipe', protoFile: FS_FILES_PROTO, message: 'amberfs.PipeEntry' };

  constructor(private readonly fds: TaskFds) {}

  claims(fd: FdResource): boolean {
    return fd.link.startsWith('pipe:[') && (fd.mode & constants.S_IFMT) === constants.S_IFIFO;
  }

  dumpDescription(ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): PipeEntry {
    const pipe: PipeEntry = { id, pipeId: pipeIdOf(fd), flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN };
    if (otherEndOutside(ctx, fd)) pipe.otherEndOutside = true;
    dumpPipeData(ctx, fd, pipe.pipeId, 'pipes-data');
    return pipe;
  }

  /**
   * The first end restored creates the pipe and fills it; the other end waits, parked, for its turn.
   * A pipe handed in with --inherit-fd is the caller's, as it is: not refilled, flags untouched
   * (the contents at dump time stay in the old pipe, for whoever holds it).
   */
  openDescription(ctx: RestoreContext, task: RestoreTask, pipe: PipeEntry): number {
    const remote = task.remote;
    const inherited = ctx.options.inheritFds?.find((i) => i.key === `pipe:[${pipe.pipeId}]`);
    if (inherited) return fetchFd(remote, process.pid, inherited.fd);
    if (pipe.otherEndOutside) throw new OutsidePipeError(task.pid, pipe.pipeId);
    const mine = `pipe:${pipe.pipeId}:${isReadEnd(pipe.flags) ? 'r' : 'w'}`;
    let fd = this.fds.unpark(task, mine);
    if (fd === undefined) {
      remote.resetData();
      const buf = remote.reserve(8);
      remote.sys.with(`pipe ${pipe.pipeId}`).pipe2(buf, 0);
      const fds = remote.memory.read(buf, 8);
      const [r, w] = [fds.readInt32LE(0), fds.readInt32LE(4)];
      restorePipeData(ctx, task, w, pipe.pipeId, 'pipes-data');
      const readEnd = isReadEnd(pipe.flags);
      this.fds.park(task, `pipe:${pipe.pipeId}:${readEnd ? 'w' : 'r'}`, readEnd ? w : r);
      fd = readEnd ? r : w;
    }
    setStatusFlags(remote, fd, pipe.flags);
    return fd;
  }

  compareDescription(live: FdResource, pipe: PipeEntry): FieldDifference[] {
    const flags = live.info.flags & ~O.CLOEXEC;
    return flags === pipe.flags ? [] : [{ what: 'flags', expected: `0${pipe.flags.toString(8)}`, actual: `0${flags.toString(8)}` }];
  }
}

/** Named pipes: opened by path, contents saved once per FIFO like a pipe's. */
export class FifoKind implements FileKind<FifoEntry> {
  readonly fdType = FdType.FIFO;
  readonly name = 'FIFO';
  readonly member = { field: 17, name: 'fifo', protoFile: FS_FILES_PROTO, message: 'amberfs.FifoEntry' };

  constructor(private readonly fds: TaskFds) {}

  claims(fd: FdResource): boolean {
    // an O_PATH fd of a FIFO opens nothing: the regular-file kind keeps it
    return fd.link.startsWith('/') && !fd.link.endsWith(' (deleted)') && (fd.mode & constants.S_IFMT) === constants.S_IFIFO && !(fd.info.flags & O.PATH);
  }

  dumpDescription(ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): FifoEntry {
    const regfId = ctx.files.addRegular(fd.link, fd.info.flags & ~O.CLOEXEC, { mode: fd.mode });
    const fifo: FifoEntry = { id, pipeId: pipeIdOf(fd), regfId };
    dumpPipeData(ctx, fd, fifo.pipeId, 'fifo-data');
    return fifo;
  }

  /**
   * Opening one end of a FIFO blocks until the other end is open, except O_RDWR. So the first
   * description of a FIFO opens a read-write keeper, refills the FIFO through it and keeps it
   * (parked) until the fd table is done; the real ends then open without blocking.
   */
  openDescription(ctx: RestoreContext, task: RestoreTask, fifo: FifoEntry): number {
    const reg = ctx.files.regular(fifo.regfId ?? -1);
    const remote = task.remote;
    const filled = ctx.state('fs:fifo-filled', () => new Set<number>());
    if (!filled.has(fifo.pipeId)) {
      const keeper = this.fds.open(task, reg.name, O.RDWR | O.NONBLOCK | O.CLOEXEC);
      restorePipeData(ctx, task, keeper, fifo.pipeId, 'fifo-data');
      this.fds.park(task, `fifo:${fifo.pipeId}:keeper`, keeper);
      filled.add(fifo.pipeId);
    }
    return this.fds.open(task, reg.name, reg.flags & (O.ACCMODE | O.NONBLOCK | O.APPEND));
  }

  compareDescription(live: FdResource, fifo: FifoEntry): FieldDifference[] {
    return pipeIdOf(live) === fifo.pipeId ? [] : [{ what: 'FIFO', expected: `inode ${fifo.pipeId}`, actual: `${live.ino}` }];
  }
}

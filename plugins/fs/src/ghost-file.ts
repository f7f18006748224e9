import { dirname, basename, join } from 'node:path';
import {
  AmberError, O, SYS,
  type DumpContext, type FdResource, type RegFileEntry, type RestoreContext, type RestoreTask,
} from '@amber/core';
import type { GhostFileEntry } from './images';
import { openInTask, readWholeFd, writeAll } from './task-fds';

export const DEFAULT_GHOST_LIMIT = 1 << 20;
const DELETED = ' (deleted)';

export const isUnlinked = (link: string) => link.startsWith('/') && link.endsWith(DELETED);
export const originalPath = (link: string) => link.slice(0, -DELETED.length);

export class GhostTooBigError extends AmberError {}

/** Saves the contents of an open file that has no name any more into ghost-file-<id>.img. */
export function dumpGhost(ctx: DumpContext, fd: FdResource, id: number): void {
  const limit = ctx.options.ghostLimit ?? DEFAULT_GHOST_LIMIT;
  if (fd.size > BigInt(limit)) {
    throw new GhostTooBigError(
      `fd ${fd.fd} of pid ${fd.pid} is the unlinked file ${originalPath(fd.link)} of ${fd.size} bytes, more than the ghost ` +
        `limit of ${limit} bytes; nothing was changed (raise it with --ghost-limit)`,
    );
  }
  const data = readWholeFd(fd.pid, fd.fd);
  const entry: GhostFileEntry = { uid: 0, gid: 0, mode: fd.mode, dev: Number(fd.dev & 0xffffffffn), ino: fd.ino, size: BigInt(data.length) };
  ctx.store.write('ghost-file', `ghost-file-${id}`, [entry], { blobs: [data] });
  ctx.count('ghost bytes', data.length);
}

export function hasGhost(ctx: RestoreContext, id: number): boolean {
  return ctx.store.has(`ghost-file-${id}`);
}

/**
 * Re-creates the unlinked file: at its old path when that is free (so the fd's link reads as
 * before), else beside it; fills it, opens it as dumped, and unlinks it again.
 */
export function openGhost(ctx: RestoreContext, task: RestoreTask, reg: RegFileEntry): number {
  const img = ctx.store.read<GhostFileEntry>('ghost-file', `ghost-file-${reg.id}`);
  const data = img.blobs[0] ?? Buffer.alloc(0);
  const remote = task.remote;
  const mode = img.entries[0].mode & 0o7777;
  let path = reg.name;
  remote.resetData();
  let writer = remote.callRaw(SYS.open, [remote.stageString(path), O.RDWR | O.CREAT | O.EXCL | O.CLOEXEC, mode]);
  if (writer === -17 /* EEXIST */) {
    path = join(dirname(reg.name), `.${basename(reg.name)}.amber-ghost-${reg.id}-${task.pid}`);
    writer = openInTask(remote, path, O.RDWR | O.CREAT | O.EXCL | O.CLOEXEC, mode);
  } else if (writer < 0) {
    throw new AmberError(`pid ${task.pid}: cannot re-create unlinked file ${reg.name}: errno ${-writer}`);
  }
  try {
    writeAll(remote, writer, data, reg.name, 0n);
    const fd = openInTask(remote, path, reg.flags & ~(O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY | O.CLOEXEC));
    remote.resetData();
    remote.call('unlink', SYS.unlink, [remote.stageString(path)], path);
    remote.resetData();
    return fd;
  } finally {
    remote.call('close', SYS.close, [writer]);
  }
}

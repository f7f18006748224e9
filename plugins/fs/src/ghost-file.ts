import { dirname, basename, join } from 'node:path';
import {
  ImageError,
  AmberError, O, SYS,
  type DumpContext, type FdResource, type RegFileEntry, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { stateOf, growingImage, type GhostFileEntry, type RemapFilePathEntry } from './images';
import { openInTask, park, parked, readWholeFd, writeAll } from './task-fds';

const REMAP_GHOST = 1;

export const DEFAULT_GHOST_LIMIT = 1 << 20;
const DELETED = ' (deleted)';

export const isUnlinked = (link: string) => link.startsWith('/') && link.endsWith(DELETED);
export const originalPath = (link: string) => link.slice(0, -DELETED.length);

export class GhostTooBigError extends AmberError {}

/**
 * Saves the contents of an open file that has no name any more, once per inode, into
 * ghost-file-<ghost id>.img (the id of its first description); remap-fpath.img maps every
 * description of it to that ghost, so two opens of one unlinked inode come back as one inode.
 */
export function dumpGhost(ctx: DumpContext, fd: FdResource, id: number): void {
  const ghosts = stateOf(ctx, 'ghosts', () => new Map<string, number>());
  const inode = `${fd.dev}:${fd.ino}`;
  let ghostId = ghosts.get(inode);
  if (ghostId === undefined) {
    ghostId = id;
    writeGhost(ctx, fd, id);
    ghosts.set(inode, id);
  }
  growingImage<RemapFilePathEntry>(ctx, 'remap-fpath', 'remap-fpath').add({ origId: id, remapId: ghostId, remapType: REMAP_GHOST });
}

function writeGhost(ctx: DumpContext, fd: FdResource, id: number): void {
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

/** The ghost a description opens (its remap-fpath entry; images without one name it by the description's id). */
function ghostIdOf(ctx: RestoreContext, id: number): number | undefined {
  const remaps = stateOf(ctx, 'remaps', () => {
    const m = new Map<number, number>();
    if (ctx.store.has('remap-fpath')) {
      for (const r of ctx.store.read<RemapFilePathEntry>('remap-fpath', 'remap-fpath').entries) if (r.remapType === REMAP_GHOST) m.set(r.origId, r.remapId);
    }
    return m;
  });
  const ghostId = remaps.get(id) ?? id;
  return ctx.store.has(`ghost-file-${ghostId}`) ? ghostId : undefined;
}

export function hasGhost(ctx: RestoreContext, id: number): boolean {
  return ghostIdOf(ctx, id) !== undefined;
}

/**
 * Re-creates the unlinked file: at its old path when that is free (so the fd's link reads as
 * before), else beside it; fills it, opens it as dumped, and unlinks it again. The writer fd stays
 * parked until the fd table is done, so other descriptions of the same inode reopen it.
 */
export function openGhost(ctx: RestoreContext, task: RestoreTask, reg: RegFileEntry): number {
  const ghostId = ghostIdOf(ctx, reg.id)!;
  const flags = reg.flags & ~(O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY | O.CLOEXEC);
  const key = `ghost:${ghostId}`;
  const made = parked(ctx, task, key);
  if (made !== undefined) return openInTask(task.remote, `/proc/self/fd/${made}`, flags);
  const img = ctx.store.read<GhostFileEntry>('ghost-file', `ghost-file-${ghostId}`);
  if (img.entries.length !== 1) throw new ImageError(`ghost-file-${ghostId}.img: holds ${img.entries.length} entries, expected 1`);
  const data = img.blobs[0] ?? Buffer.alloc(0);
  const remote = task.remote;
  const mode = img.entries[0].mode & 0o7777;
  let path = reg.name;
  remote.resetData();
  let writer = remote.callRaw(SYS.open, [remote.stageString(path), O.RDWR | O.CREAT | O.EXCL | O.CLOEXEC, mode]);
  if (writer === -17 /* EEXIST */) {
    path = join(dirname(reg.name), `.${basename(reg.name)}.amber-ghost-${ghostId}-${task.pid}`);
    writer = openInTask(remote, path, O.RDWR | O.CREAT | O.EXCL | O.CLOEXEC, mode);
  } else if (writer < 0) {
    throw new AmberError(`pid ${task.pid}: cannot re-create unlinked file ${reg.name}: errno ${-writer}`);
  }
  try {
    writeAll(remote, writer, data, reg.name, 0n);
    const fd = openInTask(remote, path, flags);
    remote.resetData();
    remote.call('unlink', SYS.unlink, [remote.stageString(path)], path);
    remote.resetData();
    park(ctx, task, key, writer);
    return fd;
  } catch (err) {
    remote.callRaw(SYS.close, [writer]);
    throw err;
  }
}

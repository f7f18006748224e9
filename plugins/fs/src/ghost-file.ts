import { dirname, basename, join } from 'node:path';
import {
  AmberError, O, SYS,
  type DumpContext, type FdResource, type RegFileEntry, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { stateOf, growingImage, type GhostFileEntry, type RemapFilePathEntry } from './images';
import { openInTask, park, parked } from './task-fds';
import { decodeChunks, encodeChunks, fillGhost, readGhostData } from './ghost-extents';

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
  // A sparse file is saved by its data extents: the limit counts data, not apparent size.
  const ghost = readGhostData(fd.pid, fd.fd, limit, (bytes, size) => new GhostTooBigError(
    `fd ${fd.fd} of pid ${fd.pid} is the unlinked file ${originalPath(fd.link)} of ${bytes} bytes of data (${size} apparent), ` +
      `more than the ghost limit of ${limit} bytes; nothing was changed and the process keeps running ` +
      `(--ghost-limit ${bytes} or more lets the dump copy the file's data into the images)`,
  ));
  const blob = ghost.sparse ? encodeChunks(ghost.extents) : Buffer.concat(ghost.extents.map((e) => e.data));
  const entry: GhostFileEntry = { uid: 0, gid: 0, mode: fd.mode, dev: Number(fd.dev & 0xffffffffn), ino: fd.ino, size: ghost.size };
  if (ghost.sparse) Object.assign(entry, { chunks: true, chunksBytes: BigInt(blob.length) });
  ctx.store.write('ghost-file', `ghost-file-${id}`, [entry], { blobs: [blob] });
  ctx.count('ghost bytes', ghost.dataBytes);
}

/** The ghost a description opens (its remap-fpath entry; images without one name it by the description's id). */
export function ghostIdOf(ctx: RestoreContext, id: number): number | undefined {
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
  const blob = img.blobs[0] ?? Buffer.alloc(0);
  const extents = img.entries[0].chunks ? decodeChunks(blob, `ghost-file-${ghostId}.img`) : [{ off: 0n, data: blob }];
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
    fillGhost(remote, writer, extents, img.entries[0].size ?? BigInt(blob.length), reg.name);
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

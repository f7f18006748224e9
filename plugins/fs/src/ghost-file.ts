import {
  AmberError, ImageError, InodeKey, O, openAsTask, recreateUnlinkedFile,
  type CompareContext, type DumpContext, type FdinfoEntry, type FdResource, type IdentityHolder, type TaskKobjIdsEntry, type RegFileEntry, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { growingImage, type GhostFileEntry, type RemapFilePathEntry } from './images';
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
  dumpGhostOnce(ctx, fd, id, writeGhost);
}

/** Writes a ghost image the first time an inode is seen (by write), and maps description id to it. */
export function dumpGhostOnce(ctx: DumpContext, fd: FdResource, id: number, write: (ctx: DumpContext, fd: FdResource, id: number) => void): void {
  const ghosts = ctx.state('fs:ghosts', () => new Map<string, number>());
  const inode = `${fd.dev}:${fd.ino}`;
  let ghostId = ghosts.get(inode);
  if (ghostId === undefined) {
    ghostId = id;
    write(ctx, fd, id);
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
  const entry: GhostFileEntry = { uid: fd.uid, gid: fd.gid, mode: fd.mode, dev: Number(fd.dev & 0xffffffffn), ino: fd.ino, size: ghost.size };
  if (ghost.sparse) Object.assign(entry, { chunks: true, chunksBytes: BigInt(blob.length) });
  ctx.store.write('ghost-file', `ghost-file-${id}`, [entry], { blobs: [blob] });
  ctx.count('ghost bytes', ghost.dataBytes);
}

/** The ghost a description opens (its remap-fpath entry; images without one name it by the description's id). */
export function ghostIdOf(ctx: RestoreContext, id: number): number | undefined {
  const remaps = ctx.state('fs:remaps', () => {
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
 * Re-creates the unlinked file for the task, with its owner and as the task (core's
 * recreateUnlinkedFile): named at its old path when that is free (so the fd's link reads as
 * before), else beside it, only while the fd is opened. A second, read-write fd opened by that
 * name stays parked until the fd table is done, so other descriptions of the same inode reopen it.
 */
export function openGhost(ctx: RestoreContext, task: RestoreTask, reg: RegFileEntry): number {
  const ghostId = ghostIdOf(ctx, reg.id)!;
  const flags = reg.flags & ~(O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY | O.CLOEXEC);
  const key = `ghost:${ghostId}`;
  const reopen = ctx.fds.parked(task, key);
  if (reopen !== undefined) return ctx.fds.open(task, `/proc/self/fd/${reopen}`, flags);
  const img = ctx.store.read<GhostFileEntry>('ghost-file', `ghost-file-${ghostId}`);
  if (img.entries.length !== 1) throw new ImageError(`ghost-file-${ghostId}.img: holds ${img.entries.length} entries, expected 1`);
  const blob = img.blobs[0] ?? Buffer.alloc(0);
  const extents = img.entries[0].chunks ? decodeChunks(blob, `ghost-file-${ghostId}.img`) : [{ off: 0n, data: blob }];
  const size = img.entries[0].size ?? BigInt(blob.length);
  const { uid, gid, mode } = img.entries[0];
  const remote = task.remote;
  const made = recreateUnlinkedFile(
    task, { path: reg.name, uid, gid, mode, tag: String(ghostId) },
    (writer) => fillGhost(remote, writer, extents, size, reg.name),
    // a second fd, read-write, for later descriptions to reopen: one with the file's name (the
    // writer, made unnamed, would give them "#<inode>" links)
    (path) => {
      const fd = openAsTask(task, path, flags);
      try {
        return [fd, openAsTask(task, path, O.RDWR | O.CLOEXEC)];
      } catch (err) {
        remote.sysRaw.close(fd);
        throw err;
      }
    },
  );
  if (made.mode !== (mode & 0o7777)) {
    ctx.log.warn(`pid ${task.pid}: the unlinked file ${reg.name} comes back without its set-id bits (mode 0${made.mode.toString(8)}, was 0${(mode & 0o7777).toString(8)}): only its owner or root may set them`);
  }
  remote.sys.close(made.writer);
  const [fd, reopener] = made.opened;
  const dumped = img.entries[0];
  // the same inode for a mapping of it (the mm plugin), or another task
  if (dumped.dev !== undefined && dumped.ino !== undefined) ctx.inodes.hold(InodeKey.deletedFile(dumped.dev, dumped.ino), task, reopener);
  ctx.fds.park(task, key, reopener);
  return fd;
}

/** Every live fd that was a deleted file at dump time, with the inode it holds now (for compare). */
export function ghostHolders(ctx: CompareContext): IdentityHolder[] {
  const remaps = new Map<number, number>();
  if (ctx.store.has('remap-fpath')) {
    for (const r of ctx.store.read<RemapFilePathEntry>('remap-fpath', 'remap-fpath').entries) if (r.remapType === REMAP_GHOST) remaps.set(r.origId, r.remapId);
  }
  const out: IdentityHolder[] = [];
  for (const pid of ctx.pids) {
    const ids = ctx.store.read<TaskKobjIdsEntry>('ids', `ids-${pid}`).entries[0];
    const live = new Map(ctx.liveFds(pid).map((f) => [f.fd, f]));
    for (const e of ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${ids.filesId}`).entries) {
      const name = `ghost-file-${remaps.get(e.id) ?? e.id}`;
      const l = live.get(e.fd);
      if (!l || !ctx.store.has(name)) continue;
      const g = ctx.store.read<GhostFileEntry>('ghost-file', name).entries[0];
      if (g.dev === undefined || g.ino === undefined) continue;
      out.push({ pid, where: `fd ${e.fd}`, key: InodeKey.deletedFile(g.dev, g.ino), inode: `${l.dev}:${l.ino}` });
    }
  }
  return out;
}

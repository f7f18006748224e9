import { constants } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AmberError, callerIsPrivileged, O, openAsTask, type DumpContext, type FdResource, type RegFileEntry, type RestoreContext, type RestoreTask } from '@amber/core';
import { dumpGhostOnce, ghostIdOf } from './ghost-file';
import { type GhostFileEntry } from './images';

const EEXIST = 17;

export const isDevice = (mode: number) => [constants.S_IFCHR, constants.S_IFBLK].includes(mode & constants.S_IFMT);

/**
 * An open device node whose name was removed: a ghost with no data, only what the node was
 * (type, device number, owner, permissions), once per inode as for unlinked files.
 */
export function dumpGhostDevice(ctx: DumpContext, fd: FdResource, id: number): void {
  dumpGhostOnce(ctx, fd, id, (c, f, ghostId) => {
    const entry: GhostFileEntry = {
      uid: f.uid, gid: f.gid, mode: f.mode, dev: Number(f.dev & 0xffffffffn), ino: f.ino, rdev: Number(f.rdev & 0xffffffffn), size: 0n,
    };
    c.store.write('ghost-file', `ghost-file-${ghostId}`, [entry], { blobs: [Buffer.alloc(0)] });
  });
}

/**
 * Makes the node again (at its old path when free, else beside it) readable by root only, opens
 * it as dumped and removes the name at once; only then, on the nameless inode, the dumped owner
 * and permissions (never set-id bits) are put back. An O_PATH fd stays parked so that other
 * descriptions of the inode reopen the same node.
 */
export function openGhostDevice(ctx: RestoreContext, task: RestoreTask, reg: RegFileEntry): number {
  const ghostId = ghostIdOf(ctx, reg.id)!;
  const flags = reg.flags & ~(O.CREAT | O.EXCL | O.TRUNC | O.CLOEXEC);
  const key = `ghost:${ghostId}`;
  const remote = task.remote;
  const made = ctx.fds.parked(task, key);
  if (made !== undefined) return ctx.fds.open(task, `/proc/self/fd/${made}`, flags);
  const node = ctx.store.read<GhostFileEntry>('ghost-file', `ghost-file-${ghostId}`).entries[0];
  // A device number from an image reaches any device: only root itself may make such a node, never
  // amber acting for a sudo user (an edited image could name a disk).
  if (!callerIsPrivileged()) {
    throw new AmberError(`pid ${task.pid}: the removed device node ${reg.name} can only be re-created by root itself, not through sudo`);
  }
  const type = node.mode & constants.S_IFMT;
  const mknod = (path: string) => {
    remote.resetData();
    return remote.sysRaw.mknod(path, type | 0o600, node.rdev ?? 0);
  };
  let path = reg.name;
  let r = mknod(path);
  if (r === -EEXIST) r = mknod((path = join(dirname(reg.name), `.${basename(reg.name)}.amber-ghost-${ghostId}-${task.pid}`)));
  if (r < 0) throw new AmberError(`pid ${task.pid}: cannot re-create the removed device node ${reg.name}: errno ${-r}`);
  let fd = -1;
  let keeper = -1;
  try {
    fd = ctx.fds.open(task, path, flags);
    keeper = ctx.fds.open(task, path, O.PATH | O.CLOEXEC);
  } finally {
    remote.resetData();
    remote.sysRaw.unlink(path);
    remote.resetData();
    if (keeper < 0 && fd >= 0) remote.sysRaw.close(fd);
  }
  remote.sys.with(reg.name).fchown(fd, node.uid, node.gid);
  remote.sys.with(reg.name).fchmod(fd, node.mode & 0o777);
  ctx.fds.park(task, key, keeper);
  return fd;
}

import { writeFileSync } from 'node:fs';
import {
  AmberError, IPC, MREMAP, O, PAGE_SIZE, parseStatus, procRead, PROT, SHM, shmidDsForSet, shmRemove, shmStatIfExists,
  type OwnedMapping, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { shmImageName, type IpcShmEntry } from './images';
import { restoresIntoHostNamespace } from './namespace';
import { fillShmContents, type ShmContents } from './shm-pages';

export class ShmIdTakenError extends AmberError {}
export class ShmRestoreError extends AmberError {}

const hex = (v: number | bigint) => `0x${v.toString(16)}`;
const roundUp = (n: bigint) => ((n + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE)) * BigInt(PAGE_SIZE);
const NEXT_ID = '/proc/sys/kernel/shm_next_id';

interface ShmRestoreState {
  segments: Map<number, IpcShmEntry>;
  /** made by this restore and not yet handed over to the kernel's IPC_RMID */
  created: Set<number>;
  /** shm_next_id written and not consumed by a shmget yet */
  nextIdPending: boolean;
  /** made in amber's own IPC namespace (the host's): only then does a failed restore remove them itself */
  host?: boolean;
}

const stateOf = (ctx: RestoreContext) => ctx.state<ShmRestoreState>('ipc:shm', () => ({ segments: new Map(), created: new Set(), nextIdPending: false }));

/** The task's effective uid and gid now (at restore, amber's until its own are set last). */
function effectiveIds(pid: number): { euid: number; egid: number } {
  const st = parseStatus(procRead(pid, 'status'));
  const second = (k: string) => Number((st.get(k) ?? '').split(/\s+/)[1]);
  return { euid: second('Uid'), egid: second('Gid') };
}

/**
 * Makes every segment of ipcns-shm-<ns> again with its id, key, size, owners and mode, and fills
 * it. Each is created by the task that created it when that task is in the tree (shm_cpid), else by
 * the root, with the creator's uid and gid as effective ids for the shmget (so shm_perm.cuid/cgid
 * are the dumped ones), then given its owner and mode by IPC_SET. The id comes from shm_next_id,
 * written in the creating task so that it is its IPC namespace's.
 */
export function restoreShm(ctx: RestoreContext, nsId: number): void {
  const name = shmImageName(nsId);
  if (!ctx.store.has(name)) return;
  const state = stateOf(ctx);
  state.host = restoresIntoHostNamespace(ctx);
  const image = ctx.store.read<IpcShmEntry>('ipcns-shm', name);
  const entries = image.entries;
  for (const e of entries) state.segments.set(e.desc.id, e);
  for (const e of entries) {
    const taken = shmStatIfExists(e.desc.id);
    if (taken) {
      throw new ShmIdTakenError(
        `shm id ${e.desc.id} (key ${hex(e.desc.key)}) is taken in this IPC namespace by another segment (key ${hex(taken.key >>> 0)}, ` +
          `${taken.segsz} bytes, created by pid ${taken.cpid}): remove it (ipcrm -m ${e.desc.id}) or restore elsewhere`,
      );
    }
  }
  entries.forEach((e, i) => {
    const contents: ShmContents = e.inPagemaps ? { pagemapId: e.amberPagemapId ?? e.desc.id } : { inline: image.blobs[i] ?? Buffer.alloc(0) };
    createSegment(ctx, state, e, contents);
  });
}

function createSegment(ctx: RestoreContext, state: ShmRestoreState, e: IpcShmEntry, contents: ShmContents): void {
  const { id, key } = e.desc;
  const task = ctx.tasks.find((t) => t.pid === e.amberCpid) ?? ctx.tasks[0];
  const r = task.remote;
  const what = `shm id ${id}`;
  const now = effectiveIds(task.pid);
  r.resetData();
  const fd = r.sys.with(NEXT_ID).open(NEXT_ID, O.WRONLY | O.CLOEXEC, 0);
  try {
    const text = Buffer.from(String(id));
    state.nextIdPending = true;
    r.sys.with(NEXT_ID).write(fd, text, text.length);
  } finally {
    r.sysRaw.close(fd);
  }
  let got: number;
  r.sys.with(`${what}: creator's gid`).setresgid(-1, e.desc.cgid, -1);
  try {
    r.sys.with(`${what}: creator's uid`).setresuid(-1, e.desc.cuid, -1);
    try {
      got = r.sysRaw.shmget(key | 0, e.size, (e.desc.mode & 0o777) | IPC.CREAT | IPC.EXCL);
    } finally {
      r.sys.setresuid(-1, now.euid, -1);
    }
  } finally {
    r.sys.setresgid(-1, now.egid, -1);
  }
  if (got < 0) {
    resetNextId(task, state);
    if (got === -17) throw new ShmIdTakenError(`shm key ${hex(key)} (shm id ${id}) is taken in this IPC namespace by another segment: remove it (ipcrm -M ${hex(key)}) or restore elsewhere`);
    throw new ShmRestoreError(`pid ${task.pid}: shmget for ${what} (key ${hex(key)}, ${e.size} bytes) failed: errno ${-got}`);
  }
  state.nextIdPending = false;
  state.created.add(got);
  if (got !== id) throw new ShmIdTakenError(`shm id ${id} (key ${hex(key)}) could not be had again: the kernel gave ${got}, so another process took ${id} meanwhile`);
  r.resetData();
  r.sys.with(what).shmctl(id, IPC.SET, r.stage(shmidDsForSet(e.desc.uid, e.desc.gid, e.desc.mode)));
  fillShmContents(ctx, task, id, contents);
  if (e.desc.mode & SHM.LOCKED) r.sys.with(`${what}: SHM_LOCK`).shmctl(id, SHM.LOCK, 0);
}

function resetNextId(task: RestoreTask, state: ShmRestoreState): void {
  if (!state.nextIdPending) return;
  const r = task.remote;
  r.resetData();
  const fd = r.sysRaw.open(NEXT_ID, O.WRONLY | O.CLOEXEC, 0);
  if (fd >= 0) {
    r.sysRaw.write(fd, Buffer.from('-1'), 2);
    r.sysRaw.close(fd);
  }
  state.nextIdPending = false;
}

/**
 * Attaches a segment where the task had it (from mm's memory phase), as the one segment every
 * holder shares. shmat maps a whole segment: a VMA that is a part of one (split by mprotect,
 * partly unmapped) is cut out of a fresh attach with mremap, the rest unmapped.
 */
export function attachAt(ctx: RestoreContext, task: RestoreTask, v: OwnedMapping): void {
  const id = Number(v.shmid);
  const e = stateOf(ctx).segments.get(id);
  const where = `VMA ${hex(v.start)}-${hex(v.end)}`;
  if (!e) throw new ShmRestoreError(`pid ${task.pid}: ${where} maps shm id ${id}, which the images' ipcns-shm lacks`);
  let flags = v.fdflags === O.RDONLY ? SHM.RDONLY : 0;
  if (v.prot & PROT.EXEC) flags |= SHM.EXEC;
  const attachedProt = PROT.READ | (flags & SHM.RDONLY ? 0 : PROT.WRITE) | (flags & SHM.EXEC ? PROT.EXEC : 0);
  const r = task.remote;
  const len = v.end - v.start;
  const whole = roundUp(e.size);
  const sys = r.sys.with(`${where}, shm id ${id}`);
  r.resetData();
  if (v.pgoff === 0n && len === whole) {
    const at = BigInt(sys.shmat(id, v.start, flags));
    if (at !== v.start) throw new ShmRestoreError(`pid ${task.pid}: shm id ${id} was attached at ${hex(at)}, not at ${hex(v.start)}`);
  } else {
    const at = BigInt(sys.shmat(id, 0, flags));
    sys.mremap(at + v.pgoff, len, len, MREMAP.MAYMOVE | MREMAP.FIXED, v.start);
    sys.munmap(at, whole);
  }
  if (v.prot !== attachedProt) sys.mprotect(v.start, len, v.prot);
}

/** Once every holder has attached: segments that were marked removed are marked again. */
export function removeMarkedShm(ctx: RestoreContext): void {
  const state = stateOf(ctx);
  const root = ctx.tasks[0];
  for (const e of state.segments.values()) {
    if (!(e.desc.mode & SHM.DEST)) continue;
    root.remote.sys.with(`shm id ${e.desc.id}`).shmctl(e.desc.id, IPC.RMID, 0);
    state.created.delete(e.desc.id);
  }
}

/**
 * A failed restore: the segments it made in the host's namespace go (the tasks that could do it
 * in-task are gone); a new namespace went with its tasks, and the host's segments of the same ids
 * are not ours.
 */
export function undoShm(ctx: RestoreContext): string[] {
  const state = stateOf(ctx);
  const problems: string[] = [];
  if (!state.host) return problems;
  for (const id of state.created) {
    try {
      if (shmStatIfExists(id)) shmRemove(id);
    } catch (err) {
      problems.push(`shm id ${id}: ${(err as Error).message}`);
    }
  }
  state.created.clear();
  if (state.nextIdPending) {
    try {
      writeFileSync(NEXT_ID, '-1');
    } catch (err) {
      problems.push(`${NEXT_ID}: ${(err as Error).message}`);
    }
  }
  return problems;
}

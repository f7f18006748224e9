import {
  AmberError, listShmSegments, O, parseSmapsVmFlags, procRead, VmaStatus,
  type DumpContext, type DumpTask, type MapsEntry, type MappingKind, type OwnedMapping, type RestoreContext, type RestoreTask, type SysvShmLine,
} from '@amber/core';
import { shmImageName, type IpcShmEntry } from './images';
import type { TreeIpcNamespace } from './namespace';
import { dumpShmContents } from './shm-pages';
import { attachAt } from './shm-restore';

export class ShmOutsideError extends AmberError {}

const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;

/** A line of /proc/PID/maps that is a SysV segment: its file is /SYSV<key>, its inode the shmid (0 is one). */
export const isSysvMapping = (m: MapsEntry) => m.path.startsWith('/SYSV') && m.perms[3] === 's';

/** Every SysV mapping of the tree, by shmid: which tasks hold it, and how many VMAs per address space. */
function attachmentsOf(tasks: readonly DumpTask[]): Map<number, { pids: number[]; vmas: number }> {
  const out = new Map<number, { pids: number[]; vmas: number }>();
  const seenVm = new Set<number>();
  for (const t of tasks) {
    const firstOfMm = !seenVm.has(t.ids.vmId);
    seenVm.add(t.ids.vmId);
    for (const m of t.maps) {
      if (!isSysvMapping(m)) continue;
      const a = out.get(m.inode) ?? { pids: [], vmas: 0 };
      if (!a.pids.includes(t.pid)) a.pids.push(t.pid);
      // the kernel counts each VMA of a segment once in shm_nattch, however many tasks share the mm
      if (firstOfMm) a.vmas++;
      out.set(m.inode, a);
    }
  }
  return out;
}

/**
 * The segments of the host's namespace that belong to the tree: those its tasks have attached
 * (removed ones too), and those nobody has attached that a task of the tree created or was the
 * last to attach or detach (shm_cpid, shm_lpid). A segment the tree has attached that a process
 * outside it has attached too is refused: the dump would take it from that process.
 */
export function treeSegments(tasks: readonly DumpTask[], all: SysvShmLine[]): SysvShmLine[] {
  const attached = attachmentsOf(tasks);
  const pids = new Set(tasks.map((t) => t.pid));
  const out: SysvShmLine[] = [];
  for (const s of all) {
    const a = attached.get(s.id);
    if (a) {
      if (s.nattch > a.vmas) {
        throw new ShmOutsideError(
          `shm id ${s.id} (key ${hex(s.key)}) attached by pid ${a.pids.join(', ')} is also attached outside the tree ` +
            `(${s.nattch} attaches, ${a.vmas} in the tree): dump the tree together with its other users`,
        );
      }
      out.push(s);
    } else if (s.nattch === 0 && (pids.has(s.cpid) || pids.has(s.lpid))) {
      out.push(s);
    }
  }
  return out;
}

/** Dumps the tree's segments into ipcns-shm-<ns>: each entry, with its contents. Returns what it dumped. */
export function dumpShm(ctx: DumpContext, ns: TreeIpcNamespace): IpcShmEntry[] {
  const segments = ns.host ? treeSegments(ctx.tasks, listShmSegments()) : listShmSegments();
  const entries: IpcShmEntry[] = [];
  const blobs: Buffer[] = [];
  for (const s of segments) {
    const e: IpcShmEntry = {
      desc: { key: s.key >>> 0, uid: s.uid, gid: s.gid, cuid: s.cuid, cgid: s.cgid, mode: s.mode, id: s.id },
      size: s.size, amberCpid: s.cpid,
    };
    // pagemap-shmem-<shmid>, as CRIU names it, unless a memory object of mm or fs has that number
    const pagemapId = () => (ctx.inodes.reserve(s.id) ? s.id : ctx.inodes.meet(`sysv-shm:${ns.ino}:${s.id}`).inode.id);
    const contents = dumpShmContents(ctx, s.id, s.key, s.size, s.swap > 0n, pagemapId);
    if ('inline' in contents) blobs.push(contents.inline);
    else {
      e.inPagemaps = true;
      if (contents.pagemapId !== s.id) e.amberPagemapId = contents.pagemapId;
      blobs.push(Buffer.alloc(0));
    }
    entries.push(e);
  }
  // segments in pagemaps last: crit reads a segment's size in bytes after every entry
  const order = entries.map((_, i) => i).sort((i, j) => Number(entries[i].inPagemaps ?? false) - Number(entries[j].inPagemaps ?? false));
  ctx.store.write('ipcns-shm', shmImageName(ns.id), order.map((i) => entries[i]), { blobs: order.map((i) => blobs[i]) });
  ctx.count('shm segments', entries.length);
  return entries;
}

/** The SysV mappings of the tree: mm writes them with VMA_AREA_SYSVIPC and the shmid; this plugin attaches them again. */
export class SysvShmMappingKind implements MappingKind {
  readonly name = 'SysV shared memory';
  readonly status = VmaStatus.AREA_SYSVIPC;
  private readonly mayWrite = new Map<number, Map<bigint, string[]>>();

  claims(m: MapsEntry): boolean {
    return isSysvMapping(m);
  }

  dumpMapping(_ctx: DumpContext, task: DumpTask, m: MapsEntry): { shmid: bigint; fdflags: number } {
    let flags = this.mayWrite.get(task.pid);
    if (!flags) this.mayWrite.set(task.pid, (flags = parseSmapsVmFlags(procRead(task.pid, 'smaps'))));
    // attached SHM_RDONLY: VM_MAYWRITE ("mw") is missing, whatever mprotect did since
    const rw = m.perms[1] === 'w' || (flags.get(m.start) ?? []).includes('mw');
    return { shmid: BigInt(m.inode), fdflags: rw ? O.RDWR : O.RDONLY };
  }

  restoreMapping(ctx: RestoreContext, task: RestoreTask, vma: OwnedMapping): void {
    attachAt(ctx, task, vma);
  }
}

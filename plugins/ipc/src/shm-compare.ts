import { statSync } from 'node:fs';
import { shmStatIfExists, VmaStatus, type CompareContext, type Difference, type IdentityHolder, type MmEntry } from '@amber/core';
import { shmImageName, type IpcShmEntry } from './images';

const hex = (v: number | bigint) => `0x${v.toString(16)}`;

/** The dumped SysV VMAs of pid (from its mm image, if the dump has one). */
function sysvVmas(ctx: CompareContext, pid: number) {
  const name = `mm-${pid}`;
  if (!ctx.store.has(name)) return [];
  return ctx.store.readOne<MmEntry>('mm', name).vmas.filter((v) => v.status & VmaStatus.AREA_SYSVIPC);
}

function liveInode(pid: number, start: bigint, end: bigint): { dev: bigint; ino: bigint } | undefined {
  return statSync(`/proc/${pid}/map_files/${start.toString(16)}-${end.toString(16)}`, { bigint: true, throwIfNoEntry: false }) ?? undefined;
}

/** Each dumped segment against the live one of its id: key, mode, owners, size; each holder's mapping against its segment. */
export function compareShm(ctx: CompareContext, nsId: number): Difference[] {
  const name = shmImageName(nsId);
  if (!ctx.store.has(name)) return [];
  const pid = ctx.pids[0];
  const diffs: Difference[] = [];
  const add = (p: number, what: string, expected: string, actual: string) => diffs.push({ plugin: 'ipc', pid: p, what, expected, actual });
  for (const e of ctx.store.read<IpcShmEntry>('ipcns-shm', name).entries) {
    const d = e.desc;
    const what = `shm id ${d.id}`;
    const live = shmStatIfExists(d.id);
    if (!live) {
      add(pid, what, `key ${hex(d.key)}, ${e.size} bytes`, 'absent');
      continue;
    }
    const fields: [string, string, string][] = [
      ['key', hex(d.key), hex(live.key >>> 0)],
      ['mode', `0${d.mode.toString(8)}`, `0${live.mode.toString(8)}`],
      ['owner', `${d.uid}:${d.gid}`, `${live.uid}:${live.gid}`],
      ['creator', `${d.cuid}:${d.cgid}`, `${live.cuid}:${live.cgid}`],
      ['size', `${e.size}`, `${live.segsz}`],
    ];
    for (const [f, expected, actual] of fields) if (expected !== actual) add(pid, `${what}: ${f}`, expected, actual);
  }
  for (const p of ctx.pids) {
    for (const v of sysvVmas(ctx, p)) {
      const st = liveInode(p, v.start, v.end);
      // a SysV segment's file has the shmid as its inode number
      if (st && st.ino !== v.shmid) add(p, `mapping ${hex(v.start)}`, `shm id ${v.shmid}`, `shm id ${st.ino}`);
    }
  }
  return diffs;
}

/** Who holds which segment now, for the core's identity check: holders of one id must map one segment. */
export function shmHolders(ctx: CompareContext): IdentityHolder[] {
  const out: IdentityHolder[] = [];
  for (const pid of ctx.pids) {
    for (const v of sysvVmas(ctx, pid)) {
      const st = liveInode(pid, v.start, v.end);
      if (!st) continue; // gone or moved: mm's maps comparison says so
      out.push({ pid, where: `mapping ${hex(v.start)}`, key: `sysv-shm:${v.shmid}`, inode: `${st.dev}:${st.ino}` });
    }
  }
  return out;
}

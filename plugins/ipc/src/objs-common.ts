import type { IpcPerm } from '@amber/core';
import type { IpcDescEntry } from './images';

/** A SysV object a restore made, removed again if the restore fails. */
export interface IpcCreated {
  kind: 'msg' | 'sem';
  id: number;
}

export function descOf(p: IpcPerm): IpcDescEntry {
  return { key: p.key >>> 0, uid: p.uid, gid: p.gid, cuid: p.cuid, cgid: p.cgid, mode: p.mode, id: p.id };
}

export function describeDesc(d: IpcDescEntry): string {
  return `id ${d.id} (key 0x${(d.key >>> 0).toString(16).padStart(8, '0')})`;
}

/** Key, owners and mode of a dumped object against the live one. */
export function diffDesc(d: IpcDescEntry, live: IpcPerm, diff: (field: string, expected: string, actual: string) => void): void {
  diff('key', `0x${(d.key >>> 0).toString(16)}`, `0x${(live.key >>> 0).toString(16)}`);
  diff('mode', `0${(d.mode & 0o777).toString(8)}`, `0${(live.mode & 0o777).toString(8)}`);
  diff('owner', `${d.uid}:${d.gid}`, `${live.uid}:${live.gid}`);
  diff('creator', `${d.cuid}:${d.cgid}`, `${live.cuid}:${live.cgid}`);
}

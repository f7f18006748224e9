import { readFileSync } from 'node:fs';
import { F, addressOf, fcntl, type FieldDifference, type FownEntry } from '@amber/core';

// F_SETOWN_EX / F_SETSIG of a socket's description (SIGIO on arriving data), read from amber's own
// copy: the owner belongs to the description. The core sets it again at restore (as for every kind);
// a socket in flight is held by no task, so its owner is read here.

export const O_ASYNC = 0o20000;

export function ownerOf(pid: number, copy: number): FownEntry | undefined {
  const ex = Buffer.alloc(8);
  fcntl(copy, F.GETOWN_EX, addressOf(ex), 'fcntl(F_GETOWN_EX)');
  const signum = fcntl(copy, F.GETSIG, 0, 'fcntl(F_GETSIG)');
  const owner = ex.readInt32LE(4);
  if (owner === 0 && signum === 0) return undefined;
  const uids = (/^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8')) ?? ['', '0', '0']).map(Number);
  return { uid: uids[1], euid: uids[2], signum, pidType: ex.readInt32LE(0), pid: owner };
}

export function compareOwner(pid: number, copy: number, dumped: FownEntry): FieldDifference[] {
  const live = ownerOf(pid, copy);
  const show = (f: FownEntry | undefined) => (f && (f.pid || f.signum) ? `pid ${f.pid} (type ${f.pidType}), signal ${f.signum}` : 'none');
  const e = show(dumped);
  const a = show(live);
  return e === a ? [] : [{ what: 'owner', expected: e, actual: a }];
}

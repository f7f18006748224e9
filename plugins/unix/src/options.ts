import {
  AmberError, SO, SOL_SOCKET, SO_TIMEO, errnoName, getsockoptBytes, getsockoptInt,
  type FieldDifference, type RemoteSyscall,
} from '@amber/core';
import type { SkOptsEntry } from './images';
import { setIntOption } from './remote';

// SO_SNDBUF/RCVBUF, timeouts, SO_RCVLOWAT, SO_PASSCRED, SO_PASSSEC; SO_PEEK_OFF is the queue's (queues.ts).

function timeo(fd: number, opt: number): [bigint, bigint] {
  const tv = getsockoptBytes(fd, SOL_SOCKET, opt, 16, 'getsockopt(SO_*TIMEO)');
  return [tv.readBigInt64LE(0), tv.readBigInt64LE(8)];
}

/** The options of amber's copy of a socket. */
export function readOptions(fd: number): SkOptsEntry {
  const [sndSec, sndUsec] = timeo(fd, SO_TIMEO.SND);
  const [rcvSec, rcvUsec] = timeo(fd, SO_TIMEO.RCV);
  return {
    soSndbuf: getsockoptInt(fd, SOL_SOCKET, SO.SNDBUF), soRcvbuf: getsockoptInt(fd, SOL_SOCKET, SO.RCVBUF),
    soSndTmoSec: sndSec, soSndTmoUsec: sndUsec, soRcvTmoSec: rcvSec, soRcvTmoUsec: rcvUsec,
    soRcvlowat: getsockoptInt(fd, SOL_SOCKET, SO.RCVLOWAT),
    soPasscred: getsockoptInt(fd, SOL_SOCKET, SO.PASSCRED) !== 0,
    soPasssec: getsockoptInt(fd, SOL_SOCKET, SO.PASSSEC) !== 0,
    // a classic BPF filter on a unix socket is not kept yet (net-tcp's kinds keep theirs)
    soFilter: [],
  };
}

/**
 * Buffer sizes: the kernel doubles what setsockopt asks and keeps it within the net.core
 * *mem_max sysctls unless the caller may force it; a size it would not give back is an error.
 */
function setBuffer(remote: RemoteSyscall, fd: number, opt: number, force: number, dumped: number): void {
  if (setIntOption(remote, fd, force, dumped >> 1) < 0) setIntOption(remote, fd, opt, dumped >> 1);
}

export function applyOptions(remote: RemoteSyscall, fd: number, o: SkOptsEntry, what: string): void {
  setBuffer(remote, fd, SO.SNDBUF, SO.SNDBUFFORCE, o.soSndbuf);
  setBuffer(remote, fd, SO.RCVBUF, SO.RCVBUFFORCE, o.soRcvbuf);
  const set = (opt: number, v: number, name: string) => {
    const r = setIntOption(remote, fd, opt, v);
    if (r < 0) throw new UnixOptionError(remote.pid, what, name, -r);
  };
  if (o.soRcvlowat !== undefined && o.soRcvlowat !== 1) set(SO.RCVLOWAT, o.soRcvlowat, 'SO_RCVLOWAT');
  if (o.soPasscred) set(SO.PASSCRED, 1, 'SO_PASSCRED');
  if (o.soPasssec) set(SO.PASSSEC, 1, 'SO_PASSSEC');
  for (const [opt, sec, usec] of [[SO_TIMEO.SND, o.soSndTmoSec, o.soSndTmoUsec], [SO_TIMEO.RCV, o.soRcvTmoSec, o.soRcvTmoUsec]] as const) {
    if (!sec && !usec) continue;
    remote.resetData();
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(sec, 0);
    tv.writeBigInt64LE(usec, 8);
    remote.sys.with(what).setsockopt(fd, SOL_SOCKET, opt, remote.stage(tv), 16);
    remote.resetData();
  }
}

export function compareOptions(live: SkOptsEntry, dumped: SkOptsEntry): FieldDifference[] {
  const out: FieldDifference[] = [];
  const keys: (keyof SkOptsEntry)[] = ['soSndbuf', 'soRcvbuf', 'soRcvlowat', 'soPasscred', 'soPasssec', 'soSndTmoSec', 'soSndTmoUsec', 'soRcvTmoSec', 'soRcvTmoUsec'];
  for (const k of keys) {
    const e = String(dumped[k] ?? '');
    const a = String(live[k] ?? '');
    if (e !== a) out.push({ what: k, expected: e, actual: a });
  }
  return out;
}

export class UnixOptionError extends AmberError {
  constructor(readonly pid: number, readonly what: string, readonly option: string, readonly errno: number) {
    super(`pid ${pid}, ${what}: cannot set ${option}: ${errnoName(errno)}`);
  }
}

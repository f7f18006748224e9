import {
  AmberError, SO, SOL_SOCKET, SO_TIMEO, errnoName, getsockoptBytes, getsockoptInt, KernelError, socketFilterOf,
  type FieldDifference, type RemoteSyscall, type SkOptsEntry,
} from '@amber/core';

// The SOL_SOCKET options every socket has (CRIU's sk_opts_entry), read from amber's copy of a
// socket and set again by injected calls in the restored task: buffer sizes, timeouts, priority,
// SO_RCVLOWAT, SO_MARK, SO_PASSCRED/PASSSEC, the bound device and a classic BPF filter.

const SO_PRIORITY = 12;
const SO_BINDTODEVICE = 25;
const SO_ATTACH_FILTER = 26;
const SO_MARK = 36;
const IFNAMSIZ = 16;
const SOCK_FILTER_SIZE = 8;

export class SocketOptionError extends AmberError {
  constructor(readonly pid: number, readonly what: string, readonly option: string, readonly errno: number) {
    super(`pid ${pid}, ${what}: cannot set ${option} again: ${errnoName(errno)}; the restore stops`);
  }
}

function timeo(fd: number, opt: number): [bigint, bigint] {
  const tv = getsockoptBytes(fd, SOL_SOCKET, opt, 16, 'getsockopt(SO_*TIMEO)');
  return [tv.readBigInt64LE(0), tv.readBigInt64LE(8)];
}

function boundDevice(fd: number): string | undefined {
  const name = getsockoptBytes(fd, SOL_SOCKET, SO_BINDTODEVICE, IFNAMSIZ, 'getsockopt(SO_BINDTODEVICE)');
  const nul = name.indexOf(0);
  const text = name.subarray(0, nul < 0 ? name.length : nul).toString();
  return text || undefined;
}

/** The SOL_SOCKET options of amber's copy of a socket. */
export function readSocketOptions(fd: number): SkOptsEntry {
  const [sndSec, sndUsec] = timeo(fd, SO_TIMEO.SND);
  const [rcvSec, rcvUsec] = timeo(fd, SO_TIMEO.RCV);
  const int = (opt: number, name: string) => getsockoptInt(fd, SOL_SOCKET, opt, `getsockopt(${name})`);
  // SO_PASSCRED and SO_PASSSEC exist only where credentials can be received (unix, netlink)
  const flag = (opt: number, name: string): boolean | undefined => {
    try {
      return int(opt, name) !== 0;
    } catch (e) {
      if (e instanceof KernelError && (e.errnoName === 'EOPNOTSUPP' || e.errnoName === 'ENOTSUP' || e.errnoName === 'ENOPROTOOPT')) return undefined;
      throw e;
    }
  };
  const opts: SkOptsEntry = {
    soSndbuf: int(SO.SNDBUF, 'SO_SNDBUF'), soRcvbuf: int(SO.RCVBUF, 'SO_RCVBUF'),
    soSndTmoSec: sndSec, soSndTmoUsec: sndUsec, soRcvTmoSec: rcvSec, soRcvTmoUsec: rcvUsec,
    soPriority: int(SO_PRIORITY, 'SO_PRIORITY'), soRcvlowat: int(SO.RCVLOWAT, 'SO_RCVLOWAT'), soMark: int(SO_MARK, 'SO_MARK'),
    soPasscred: flag(SO.PASSCRED, 'SO_PASSCRED'), soPasssec: flag(SO.PASSSEC, 'SO_PASSSEC'),
    soFilter: socketFilterOf(fd),
  };
  const dev = boundDevice(fd);
  if (dev) opts.soBoundDev = dev;
  return opts;
}

function setInt(remote: RemoteSyscall, fd: number, opt: number, value: number): number {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  remote.resetData();
  const r = remote.sysRaw.setsockopt(fd, SOL_SOCKET, opt, v, 4);
  remote.resetData();
  return r;
}

/**
 * Sets the dumped options on fd in the task. Buffer sizes: the kernel doubles what it is asked
 * and caps it at net.core.*mem_max unless the task may force it, so the forcing form comes first.
 */
export function applySocketOptions(remote: RemoteSyscall, fd: number, o: SkOptsEntry, what: string): void {
  const must = (opt: number, value: number, name: string) => {
    const r = setInt(remote, fd, opt, value);
    if (r < 0) throw new SocketOptionError(remote.pid, what, name, -r);
  };
  for (const [force, plain, size, name] of [[SO.SNDBUFFORCE, SO.SNDBUF, o.soSndbuf, 'SO_SNDBUF'], [SO.RCVBUFFORCE, SO.RCVBUF, o.soRcvbuf, 'SO_RCVBUF']] as const) {
    if (setInt(remote, fd, force, size >> 1) < 0) must(plain, size >> 1, name);
  }
  if (o.soPriority) must(SO_PRIORITY, o.soPriority, 'SO_PRIORITY');
  if (o.soRcvlowat !== undefined && o.soRcvlowat !== 1) must(SO.RCVLOWAT, o.soRcvlowat, 'SO_RCVLOWAT');
  if (o.soMark) must(SO_MARK, o.soMark, 'SO_MARK');
  if (o.soPasscred) must(SO.PASSCRED, 1, 'SO_PASSCRED');
  if (o.soPasssec) must(SO.PASSSEC, 1, 'SO_PASSSEC');
  for (const [opt, sec, usec] of [[SO_TIMEO.SND, o.soSndTmoSec, o.soSndTmoUsec], [SO_TIMEO.RCV, o.soRcvTmoSec, o.soRcvTmoUsec]] as const) {
    if (!sec && !usec) continue;
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(sec, 0);
    tv.writeBigInt64LE(usec, 8);
    remote.resetData();
    remote.sys.with(what).setsockopt(fd, SOL_SOCKET, opt, tv, 16);
    remote.resetData();
  }
  if (o.soBoundDev) {
    const name = Buffer.from(o.soBoundDev + '\0');
    remote.resetData();
    const r = remote.sysRaw.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length);
    remote.resetData();
    if (r < 0) throw new SocketOptionError(remote.pid, what, `SO_BINDTODEVICE ${o.soBoundDev}`, -r);
  }
  if (o.soFilter.length) attachFilter(remote, fd, o.soFilter, what);
}

function attachFilter(remote: RemoteSyscall, fd: number, filter: bigint[], what: string): void {
  remote.resetData();
  const prog = Buffer.alloc(filter.length * SOCK_FILTER_SIZE);
  filter.forEach((insn, i) => prog.writeBigUInt64LE(insn, i * SOCK_FILTER_SIZE));
  const at = remote.stage(prog);
  // struct sock_fprog: len u16, (pad), filter pointer
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(filter.length, 0);
  fprog.writeBigUInt64LE(at, 8);
  const r = remote.sysRaw.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16);
  remote.resetData();
  if (r < 0) throw new SocketOptionError(remote.pid, what, `its socket filter (${filter.length} BPF instructions)`, -r);
}

export function compareSocketOptions(live: SkOptsEntry, dumped: SkOptsEntry): FieldDifference[] {
  const out: FieldDifference[] = [];
  const keys: (keyof SkOptsEntry)[] = [
    'soSndbuf', 'soRcvbuf', 'soPriority', 'soRcvlowat', 'soMark', 'soPasscred', 'soPasssec', 'soBoundDev',
    'soSndTmoSec', 'soSndTmoUsec', 'soRcvTmoSec', 'soRcvTmoUsec',
  ];
  for (const k of keys) {
    const e = String(dumped[k] ?? '');
    const a = String(live[k] ?? '');
    if (e !== a) out.push({ what: k, expected: e, actual: a });
  }
  const filter = (f: bigint[]) => `${f.length} BPF instructions`;
  if (live.soFilter.join() !== dumped.soFilter.join()) out.push({ what: 'socket filter', expected: filter(dumped.soFilter), actual: filter(live.soFilter) });
  return out;
}

import {
  SOL_SOCKET, encodeControl, layoutMsghdr, sockaddrUn,
  type RemoteSyscall, type UnixCredentials,
} from '@amber/core';

// Socket calls injected into a task being restored (remote.sys.* once the typed table lands).

export function socketIn(remote: RemoteSyscall, type: number, what: string): number {
  return remote.sys.with(what).socket(1 /* AF_UNIX */, type, 0);
}

export function socketpairIn(remote: RemoteSyscall, type: number, what: string): [number, number] {
  remote.resetData();
  const at = remote.reserve(8);
  remote.sys.with(what).socketpair(1, type, 0, at);
  const fds = remote.memory.read(at, 8);
  remote.resetData();
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

function withName(remote: RemoteSyscall, name: Buffer, fn: (addr: bigint, len: number) => number): number {
  remote.resetData();
  const { addr, len } = sockaddrUn(name);
  try {
    return fn(remote.stage(addr), len);
  } finally {
    remote.resetData();
  }
}

/** bind(2) in the task; returns -errno (the caller says what a taken name means). */
export const bindRaw = (remote: RemoteSyscall, fd: number, name: Buffer): number =>
  withName(remote, name, (addr, len) => remote.sysRaw.bind(fd, addr, len));

export const connectRaw = (remote: RemoteSyscall, fd: number, name: Buffer): number =>
  withName(remote, name, (addr, len) => remote.sysRaw.connect(fd, addr, len));

/** setsockopt(SOL_SOCKET, opt, int) in the task; returns -errno (the caller decides what a refusal means). */
export function setIntOption(remote: RemoteSyscall, fd: number, opt: number, value: number): number {
  remote.resetData();
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  const r = remote.sysRaw.setsockopt(fd, SOL_SOCKET, opt, remote.stage(v), 4);
  remote.resetData();
  return r;
}

/** sendmsg(2) in the task with MSG_DONTWAIT: a full queue is an error, never a hang. Returns bytes sent or -errno. */
export function sendIn(remote: RemoteSyscall, fd: number, data: Buffer, opts: { to?: Buffer; fds?: number[]; creds?: UnixCredentials }): number {
  remote.resetData();
  const control = encodeControl(opts.fds ?? [], opts.creds);
  const size = layoutMsghdr(0n, { data, name: opts.to, control }).buf.length;
  const base = remote.reserve(size);
  remote.memory.write(base, layoutMsghdr(base, { data, name: opts.to, control }).buf);
  const r = remote.sysRaw.sendmsg(fd, base, 0x40 /* MSG_DONTWAIT */ | 0x4000 /* MSG_NOSIGNAL */);
  remote.resetData();
  return r;
}

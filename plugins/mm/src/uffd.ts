import { UFFD, type RemoteSyscall } from '@amber/core';

/** UFFDIO_API on the task's userfaultfd `fd`, asking for `features`; throws naming `detail`. */
export function uffdApi(remote: RemoteSyscall, fd: number, features: number, detail?: string): void {
  const api = Buffer.alloc(24);
  api.writeBigUInt64LE(BigInt(UFFD.API), 0);
  api.writeBigUInt64LE(BigInt(features), 8);
  remote.resetData();
  remote.sys.with(detail).ioctl(fd, UFFD.IOC_API, remote.stage(api));
}

/** UFFDIO_REGISTER of [start, end) on the task's userfaultfd `fd` in `mode`: rax (-errno on failure). */
export function uffdRegister(remote: RemoteSyscall, fd: number, start: bigint, end: bigint, mode: number): number {
  const reg = Buffer.alloc(32);
  reg.writeBigUInt64LE(start, 0);
  reg.writeBigUInt64LE(end - start, 8);
  reg.writeBigUInt64LE(BigInt(mode), 16);
  remote.resetData();
  return remote.sysRaw.ioctl(fd, UFFD.IOC_REGISTER, remote.stage(reg));
}

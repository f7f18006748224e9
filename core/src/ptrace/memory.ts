import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { KernelError, errnoNumber } from '../kernel/errors';

/**
 * Another task's memory through /proc/PID/mem. Unlike process_vm_writev, writes here go through
 * read-only and executable mappings too (the kernel uses FOLL_FORCE), which is what injecting
 * code needs.
 */
export class TaskMemory {
  private fd: number;

  constructor(readonly pid: number) {
    this.fd = openSync(`/proc/${pid}/mem`, 'r+');
  }

  read(addr: bigint, len: number): Buffer {
    const buf = Buffer.alloc(len);
    this.readInto(addr, buf);
    return buf;
  }

  readInto(addr: bigint, buf: Buffer, len = buf.length): void {
    let done = 0;
    while (done < len) {
      const n = this.io(() => readSync(this.fd, buf, done, len - done, Number(addr + BigInt(done))), 'read', addr);
      if (n === 0) throw new KernelError('read /proc/PID/mem', errnoNumber('EIO'), this.pid, `address 0x${addr.toString(16)}`);
      done += n;
    }
  }

  write(addr: bigint, data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      const n = this.io(() => writeSync(this.fd, data, done, data.length - done, Number(addr + BigInt(done))), 'write', addr);
      if (n === 0) throw new KernelError('write /proc/PID/mem', errnoNumber('EIO'), this.pid, `address 0x${addr.toString(16)}`);
      done += n;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private io(fn: () => number, op: string, addr: bigint): number {
    try {
      return fn();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      throw new KernelError(`${op} /proc/PID/mem`, errnoNumber(code), this.pid, `address 0x${addr.toString(16)}`);
    }
  }
}

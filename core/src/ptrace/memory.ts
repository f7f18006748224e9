import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { KernelError, errnoNumber } from '../kernel/errors';

/**
 * Another task's memory through /proc/PID/mem. Unlike process_vm_writev, writes here go through
 * read-only and executable mappings too (the kernel uses FOLL_FORCE), which is what injecting
 * code needs.
 */
export class TaskMemory {
  /** The open /proc/PID/mem and how many handles hold it: the threads of a process share one. */
  private file: { fd: number; holders: number } | undefined;

  constructor(readonly pid: number, shared?: TaskMemory) {
    if (shared) {
      if (!shared.file) throw new Error(`pid ${pid}: memory of pid ${shared.pid} shared after it was closed`);
      this.file = shared.file;
      this.file.holders++;
    } else {
      this.file = { fd: openSync(`/proc/${pid}/mem`, 'r+'), holders: 1 };
    }
  }

  /** Another handle on the same open file, for a thread of the same address space (CLONE_VM). */
  share(pid: number): TaskMemory {
    return new TaskMemory(pid, this);
  }

  private get fd(): number {
    if (!this.file) throw new KernelError('/proc/PID/mem', errnoNumber('EBADF'), this.pid, 'used after close');
    return this.file.fd;
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

  /** Closes this handle (once); the file closes with its last handle. */
  close(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    if (--f.holders === 0) closeSync(f.fd);
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

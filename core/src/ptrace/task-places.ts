import { closeSync, constants, openSync, readSync } from 'node:fs';
import { readMaps, type MapsEntry } from '../task/proc';

// Places in a task that injection borrows before it has a scratch area of its own.

/** The task's mappings, read once for the places below. */
export function taskMappings(pid: number): MapsEntry[] {
  return readMaps(pid);
}

/** Where a frame of `len` bytes fits below the red zone of a stack at sp, in a writable mapping; else undefined. */
export function stackFrameRoom(maps: MapsEntry[], sp: bigint, len: number): bigint | undefined {
  const at = (sp - 128n - BigInt(len)) & ~63n;
  return maps.some((m) => m.perms[1] === 'w' && m.start <= at && sp <= m.end) ? at : undefined;
}

/** An address inside an executable mapping of the task: the vDSO if it has one. */
export function findExecutableAddress(pid: number, maps: MapsEntry[]): bigint {
  const executable = maps.filter((m) => m.perms[2] === 'x');
  const at = executable.find((m) => m.path === '[vdso]') ?? executable[0];
  if (!at) throw new Error(`pid ${pid} has no executable mapping to inject code through`);
  return at.start;
}

/**
 * `mov $15, %rax; syscall` (glibc's __restore_rt, Go's runtime sigreturn) and `mov $15, %eax;
 * syscall` (musl's): code of the task's own that makes an rt_sigreturn, so a thread can be left
 * at a sigreturn into a frame of its own state while nothing of amber's is mapped (finishLanded).
 */
const SIGRETURN_CODES = [Buffer.from([0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05]), Buffer.from([0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05])];

/** The executable file bytes mapped at each (path, offset, length) looked at, once a dump: where a sigreturn code lies in them, or -1. */
export type SigreturnCodeCache = Map<string, number>;

/**
 * An address of the task's where an rt_sigreturn code lies, checked in its memory, or undefined.
 * The task's C library first; a static program's own executable (not past 64 MiB of it). The
 * mapped files are read (through /proc/PID/map_files: the very file mapped, whatever its path
 * names now), not the task's memory, and what is found is then checked in the task.
 */
export function findSigreturnCode(pid: number, maps: MapsEntry[], readTask: (at: bigint, len: number) => Buffer, cache: SigreturnCodeCache): bigint | undefined {
  const code = maps.filter((m) => m.perms === 'r-xp' && m.path.startsWith('/'));
  const ordered = [...code.filter((m) => /\/(libc[.-]|ld-musl)/.test(m.path)), ...code.filter((m) => !/\/(libc[.-]|ld-musl)/.test(m.path))];
  for (const m of ordered) {
    const len = Number(m.end - m.start);
    if (len > 64 << 20) continue;
    const key = `${m.path}\0${m.offset}\0${len}`;
    let at = cache.get(key);
    if (at === undefined) {
      at = searchFile(`/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`, Number(m.offset), len);
      cache.set(key, at);
    }
    if (at < 0) continue;
    const addr = m.start + BigInt(at);
    const here = readTask(addr, 9);
    if (SIGRETURN_CODES.some((c) => here.subarray(0, c.length).equals(c))) return addr;
  }
  return undefined;
}

function searchFile(path: string, offset: number, len: number): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return -1;
  }
  try {
    const bytes = Buffer.allocUnsafe(len);
    const got = readSync(fd, bytes, 0, len, offset);
    for (const c of SIGRETURN_CODES) {
      const at = bytes.subarray(0, got).indexOf(c);
      if (at >= 0) return at;
    }
    return -1;
  } catch {
    return -1;
  } finally {
    closeSync(fd);
  }
}

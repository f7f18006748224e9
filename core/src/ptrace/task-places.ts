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

import { readFileSync } from 'node:fs';

// Places in a task that injection borrows before it has a scratch area of its own.

/** Where a frame of `len` bytes fits below the red zone of a stack at sp, in a writable mapping; else undefined. */
export function stackFrameRoom(pid: number, sp: bigint, len: number): bigint | undefined {
  const at = (sp - 128n - BigInt(len)) & ~63n;
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (....)/.exec(line);
    if (!m || m[3][1] !== 'w') continue;
    if (BigInt('0x' + m[1]) <= at && sp <= BigInt('0x' + m[2])) return at;
  }
  return undefined;
}

/** An address inside an executable mapping of the task: the vDSO if it has one. */
export function findExecutableAddress(pid: number): bigint {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  let fallback: bigint | undefined;
  for (const line of maps) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ (....)/.exec(line);
    if (!m || m[2][2] !== 'x') continue;
    const addr = BigInt('0x' + m[1]);
    if (line.endsWith('[vdso]')) return addr;
    fallback ??= addr;
  }
  if (fallback === undefined) throw new Error(`pid ${pid} has no executable mapping to inject code through`);
  return fallback;
}

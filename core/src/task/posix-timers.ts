import { AmberError } from '../kernel/errors';
import type { PosixTimerEntry } from '../images';
import type { RemoteSyscall } from '../ptrace/remote-syscall';

const SIGEV_THREAD_ID = 4;
const PR_TIMER_CREATE_RESTORE_IDS = 77;
const NOTIFY = { signal: 0, none: 1, thread: 2 } as Record<string, number>;

/** The blocks of /proc/PID/timers: id, signal and value, how it notifies, and the clock. */
export function parseTimers(text: string): Omit<PosixTimerEntry, 'overrun' | 'isec' | 'insec' | 'vsec' | 'vnsec'>[] {
  const out: Omit<PosixTimerEntry, 'overrun' | 'isec' | 'insec' | 'vsec' | 'vnsec'>[] = [];
  let cur: Partial<PosixTimerEntry> | undefined;
  for (const line of text.split('\n')) {
    const [key, value = ''] = line.split(/:\s*/, 2);
    if (key === 'ID') out.push((cur = { itId: Number(value) }) as PosixTimerEntry);
    else if (!cur) continue;
    else if (key === 'signal') {
      const [signo, ptr] = value.split('/');
      cur.siSigno = Number(signo);
      cur.sivalPtr = BigInt('0x' + ptr);
    } else if (key === 'notify') {
      const m = /^(\w+)\/(tid|pid)\.(\d+)/.exec(value);
      if (m) {
        cur.itSigevNotify = (NOTIFY[m[1]] ?? 0) | (m[2] === 'tid' ? SIGEV_THREAD_ID : 0);
        if (m[2] === 'tid') cur.notifyThreadId = Number(m[3]);
      }
    } else if (key === 'ClockID') cur.clockId = Number(value);
  }
  return out;
}

/** Every POSIX timer of the process, with its remaining time and interval (timer_gettime in the task). */
export function dumpPosixTimers(remote: RemoteSyscall, timersText: string): PosixTimerEntry[] {
  remote.resetData();
  const its = remote.reserve(32);
  return parseTimers(timersText).map((t) => {
    remote.sys.with(`timer ${t.itId}`).timer_gettime(t.itId, its);
    const raw = remote.memory.read(its, 32);
    const overrun = remote.sys.with(`timer ${t.itId}`).timer_getoverrun(t.itId);
    return {
      ...t, overrun,
      isec: raw.readBigInt64LE(0), insec: raw.readBigInt64LE(8), vsec: raw.readBigInt64LE(16), vnsec: raw.readBigInt64LE(24),
    };
  });
}

/**
 * Recreates the timers with their old ids (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15, makes
 * timer_create take the id it is given; without it ids are handed out in order, which works when
 * the dumped ids have no holes) and re-arms them. The time spent checkpointed is not counted.
 */
export function restorePosixTimers(remote: RemoteSyscall, timers: PosixTimerEntry[]): void {
  if (!timers.length) return;
  remote.resetData();
  const explicit = remote.sysRaw.prctl(PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) === 0;
  const sigev = remote.reserve(64);
  const slot = remote.reserve(4);
  const its = remote.reserve(32);
  try {
    for (const t of [...timers].sort((a, b) => a.itId - b.itId)) {
      const ev = Buffer.alloc(64);
      ev.writeBigUInt64LE(t.sivalPtr, 0);
      ev.writeInt32LE(t.siSigno, 8);
      ev.writeInt32LE(t.itSigevNotify, 12);
      if (t.itSigevNotify & SIGEV_THREAD_ID) ev.writeInt32LE(t.notifyThreadId ?? remote.pid, 16);
      remote.memory.write(sigev, ev);
      const id = Buffer.alloc(4);
      id.writeInt32LE(t.itId, 0);
      remote.memory.write(slot, id);
      remote.sys.with(`timer ${t.itId}`).timer_create(t.clockId, sigev, slot);
      const got = remote.memory.read(slot, 4).readInt32LE(0);
      if (got !== t.itId) {
        throw new AmberError(`pid ${remote.pid}: POSIX timer ${t.itId} came back as ${got}; this kernel cannot choose timer ids (needs Linux 6.15)`);
      }
      if (t.vsec || t.vnsec) {
        const v = Buffer.alloc(32);
        v.writeBigInt64LE(t.isec, 0);
        v.writeBigInt64LE(t.insec, 8);
        v.writeBigInt64LE(t.vsec, 16);
        v.writeBigInt64LE(t.vnsec, 24);
        remote.memory.write(its, v);
        remote.sys.with(`timer ${t.itId}`).timer_settime(t.itId, 0, its, 0);
      }
    }
  } finally {
    if (explicit) remote.sysRaw.prctl(PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
  }
}

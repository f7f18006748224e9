import {
  FdType, NO_FOWN, O, SYS,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type RestoreContext,
  type RestoreTask, 
} from '@amber/core';
import { FS_FILES_PROTO } from './images';
import type { TimerfdEntry } from './generated';

/** _IOW('T', 0, u64): sets the expiry count; needs CONFIG_CHECKPOINT_RESTORE. */
const TFD_IOC_SET_TICKS = 0x40085400;

function timespecOf(text: string | undefined): [bigint, bigint] {
  const m = /\(\s*(\d+),\s*(\d+)\s*\)/.exec(text ?? '');
  return m ? [BigInt(m[1]), BigInt(m[2])] : [0n, 0n];
}

export class TimerfdKind implements FileKind<TimerfdEntry> {
  readonly fdType = FdType.TIMERFD;
  readonly name = 'timerfd';
  readonly member = { field: 12, name: 'tfd', protoFile: FS_FILES_PROTO, message: 'amberfs.TimerfdEntry' };

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[timerfd]';
  }

  dumpDescription(_ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): TimerfdEntry {
    const x = fd.info.extra;
    const [vsec, vnsec] = timespecOf(x.get('it_value'));
    const [isec, insec] = timespecOf(x.get('it_interval'));
    const tfd: TimerfdEntry = {
      id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, clockid: Number(x.get('clockid') ?? 0),
      ticks: BigInt(x.get('ticks') ?? '0'), settimeFlags: parseInt(x.get('settime flags') ?? '0', 8), vsec, vnsec, isec, insec,
    };
    return tfd;
  }

  /**
   * it_value in fdinfo is the time left, so the timer is re-armed relative to now; time spent
   * checkpointed does not count. Expirations not yet read come back through TFD_IOC_SET_TICKS.
   */
  openDescription(ctx: RestoreContext, task: RestoreTask, t: TimerfdEntry): number {
    const remote = task.remote;
    const fd = remote.sys.timerfd_create(t.clockid, t.flags & O.NONBLOCK);
    remote.resetData();
    // A periodic timer that expired and was not read shows no time left: it is due now.
    const due = !t.vsec && !t.vnsec && (t.isec || t.insec) ? 1n : t.vnsec;
    const spec = Buffer.alloc(32);
    [t.isec, t.insec, t.vsec, due].forEach((v, i) => spec.writeBigUInt64LE(v, i * 8));
    if (t.vsec || due) remote.sys.timerfd_settime(fd, 0, spec, 0);
    if (t.ticks > 0n) {
      const ticks = Buffer.alloc(8);
      ticks.writeBigUInt64LE(t.ticks);
      const r = remote.sysRaw.ioctl(fd, TFD_IOC_SET_TICKS, remote.stage(ticks));
      if (r < 0) ctx.log.warn(`pid ${task.pid}: timerfd lost ${t.ticks} unread expirations (TFD_IOC_SET_TICKS: errno ${-r})`);
    }
    remote.resetData();
    return fd;
  }

  compareDescription(live: FdResource, t: TimerfdEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    const clock = Number(live.info.extra.get('clockid') ?? -1);
    if (clock !== t.clockid) out.push({ what: 'timerfd clock', expected: `${t.clockid}`, actual: `${clock}` });
    const [isec, insec] = timespecOf(live.info.extra.get('it_interval'));
    if (isec !== t.isec || insec !== t.insec) out.push({ what: 'timerfd interval', expected: `${t.isec}.${t.insec}`, actual: `${isec}.${insec}` });
    // a one-shot timer that ran out since the dump is disarmed by the kernel: only compare
    // periodic timers and ones the dump saw disarmed
    const [vsec, vnsec] = timespecOf(live.info.extra.get('it_value'));
    const armedNow = vsec !== 0n || vnsec !== 0n || isec !== 0n || insec !== 0n;
    const armedThen = t.vsec !== 0n || t.vnsec !== 0n || t.isec !== 0n || t.insec !== 0n;
    if (armedNow !== armedThen && (t.isec || t.insec || !armedThen)) {
      out.push({ what: 'timerfd', expected: armedThen ? 'armed' : 'disarmed', actual: armedNow ? 'armed' : 'disarmed' });
    }
    return out;
  }
}

import {
  FdType, NO_FOWN, O, TIOC, close, getTermios, getWinsize, ioctlGetInt, setStatusFlags, takeFd,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type ImageStore,
  type RestoreContext, type RestoreTask, type TaskFds,
} from '@amber/core';
import { classify, isTerminalFd, slaveIndexOf } from './devices';
import { endKey, masterIndexOf, ttyDumpState } from './dump-ttys';
import { TTY_MEMBER, TtyType, TtyImageError, type TtyDataEntry, type TtyFileEntry, type TtyInfoEntry } from './images';
import { openOutsideTerminal } from './outside-terminal';
import { isMasterInfo, makePair, ttyRestoreState } from './pty-pair';
import { openCttyFile } from './ctty';
import { describeTermios, sameTermios, termiosOf, winsizeOf } from './termios';

const OPEN_FLAGS = O.ACCMODE | O.NONBLOCK | O.APPEND;
const parkedMaster = (index: number) => `tty:pty:${index}:master`;

/**
 * Terminals (CRIU's fd type TTY): pty masters (/dev/ptmx), slaves (/dev/pts/N), /dev/tty, and,
 * with --shell-job, the outside terminal. The terminals themselves are dumped once by the plugin
 * (tty-info.img, tty-data.img); a description names its terminal end.
 */
export class TtyFileKind implements FileKind<TtyFileEntry> {
  readonly fdType = FdType.TTY;
  readonly name = 'tty';
  readonly member = TTY_MEMBER;

  constructor(private readonly store: ImageStore, private readonly fds: TaskFds) {}

  claims(fd: FdResource): boolean {
    return isTerminalFd(fd);
  }

  dumpDescription(ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): TtyFileEntry {
    const state = ttyDumpState(ctx);
    const ttyInfoId = state.infoIds.get(endKey(state, fd));
    if (ttyInfoId === undefined) throw new TtyImageError(`fd ${fd.fd} of pid ${fd.pid} (${fd.link}): its terminal was not dumped`);
    return { id, ttyInfoId, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN };
  }

  openDescription(ctx: RestoreContext, task: RestoreTask, entry: TtyFileEntry): number {
    const state = ttyRestoreState(ctx);
    const info = state.infos.get(entry.ttyInfoId);
    if (!info) throw new TtyImageError(`pid ${task.pid}: files.img names terminal ${entry.ttyInfoId}, which tty-info.img does not have (a damaged or mixed image set)`);
    if (info.type === TtyType.EXT_TTY) return openOutsideTerminal(ctx, task, info, false, entry.flags);
    if (info.type === TtyType.CTTY) return openCttyFile(ctx, task, info);
    const index = info.pty!.index;
    let fd: number;
    if (isMasterInfo(info)) {
      fd = this.fds.unpark(task, parkedMaster(index)) ?? makePair(ctx, task, index);
    } else {
      if (!state.made.has(index)) this.fds.park(task, parkedMaster(index), makePair(ctx, task, index));
      fd = this.fds.open(task, `/dev/pts/${index}`, (entry.flags & OPEN_FLAGS) | O.NOCTTY);
    }
    setStatusFlags(task.remote, fd, entry.flags);
    return fd;
  }

  postOpen(ctx: RestoreContext, task: RestoreTask, entry: TtyFileEntry, fd: number): void {
    const placed = ttyRestoreState(ctx).placed;
    if (!placed.has(entry.ttyInfoId)) placed.set(entry.ttyInfoId, { pid: task.pid, fd });
  }

  compareDescription(live: FdResource, entry: TtyFileEntry): FieldDifference[] {
    const info = this.infos().get(entry.ttyInfoId);
    if (!info) return [{ what: 'terminal', expected: `tty-info ${entry.ttyInfoId}`, actual: 'not in tty-info.img' }];
    const out: FieldDifference[] = [];
    const end = classify(live);
    const kind = info.type === TtyType.CTTY ? 'ctty' : info.type === TtyType.EXT_TTY ? 'outside' : isMasterInfo(info) ? 'master' : 'slave';
    const liveKind = kind === 'outside' && end.what !== 'unsupported' ? 'outside' : end.what;
    if (liveKind !== kind) return [{ what: 'terminal kind', expected: kind, actual: liveKind }];
    if (kind === 'outside') return out;
    const copy = takeFd(live.pid, live.fd);
    try {
      if (kind === 'ctty') {
        const target = ioctlGetInt(copy, TIOC.TIOCGDEV, 'ioctl(TIOCGDEV)') >>> 0;
        if (target !== info.cttyRdev) out.push({ what: '/dev/tty terminal', expected: `/dev/pts/${slaveIndexOf(info.cttyRdev ?? 0)}`, actual: `/dev/pts/${slaveIndexOf(target)}` });
        return out;
      }
      const index = kind === 'master' ? masterIndexOf(live) : slaveIndexOf(Number(live.rdev & 0xffffffffn));
      if (index !== info.pty?.index) out.push({ what: 'pty index', expected: `${info.pty?.index}`, actual: `${index}` });
      const termios = getTermios(copy);
      if (info.termios && !sameTermios(termios, termiosOf(info.termios))) out.push({ what: 'termios', expected: describeTermios(termiosOf(info.termios)), actual: describeTermios(termios) });
      const ws = getWinsize(copy);
      const want = info.winsize && winsizeOf(info.winsize);
      if (want && (ws.row !== want.row || ws.col !== want.col || ws.xpixel !== want.xpixel || ws.ypixel !== want.ypixel)) {
        out.push({ what: 'window size', expected: `${want.row}x${want.col} (${want.xpixel}x${want.ypixel} px)`, actual: `${ws.row}x${ws.col} (${ws.xpixel}x${ws.ypixel} px)` });
      }
      const queued = ioctlGetInt(copy, TIOC.TIOCINQ, 'ioctl(TIOCINQ)');
      const data = this.data().get(info.id);
      const expected = data ? (data.linesBytes ?? data.data.length) : 0;
      if (queued !== expected) out.push({ what: 'queued bytes', expected: `${expected}`, actual: `${queued}` });
      const flags: [string, number, boolean][] = [['exclusive', TIOC.TIOCGEXCL, info.exclusive]];
      if (kind === 'master') flags.push(['packet mode', TIOC.TIOCGPKT, info.packetMode], ['locked', TIOC.TIOCGPTLCK, info.locked]);
      for (const [what, request, dumped] of flags) {
        const now = ioctlGetInt(copy, request, `ioctl(${what})`) !== 0;
        if (now !== dumped) out.push({ what, expected: `${dumped}`, actual: `${now}` });
      }
    } finally {
      close(copy);
    }
    return out;
  }

  private cache?: { infos: Map<number, TtyInfoEntry>; data: Map<number, TtyDataEntry> };

  private infos(): Map<number, TtyInfoEntry> {
    return this.load().infos;
  }

  private data(): Map<number, TtyDataEntry> {
    return this.load().data;
  }

  private load(): { infos: Map<number, TtyInfoEntry>; data: Map<number, TtyDataEntry> } {
    if (!this.cache) {
      const infos = new Map<number, TtyInfoEntry>();
      const data = new Map<number, TtyDataEntry>();
      if (this.store.has('tty-info')) for (const e of this.store.read<TtyInfoEntry>('tty-info', 'tty-info').entries) infos.set(e.id, e);
      if (this.store.has('tty-data')) for (const e of this.store.read<TtyDataEntry>('tty-data', 'tty-data').entries) data.set(e.ttyId, e);
      this.cache = { infos, data };
    }
    return this.cache;
  }
}

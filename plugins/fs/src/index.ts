import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import {
  DUMPED_INODES, SHARED_INODES, TASK_FDS,
  type CompareContext, type Difference, type DumpContext, type DumpedInodes, type FileKind, type IdentityHolder, type ResourcePlugin, type RestoreContext, type SharedInodes, type TaskFds,
} from '@amber/core';
import { RegularFileKind } from './regular-file';
import { compareFsState, dumpFsState, restoreFsState } from './fs-state';
import { registerFsImages } from './images';
import { FifoKind, PipeKind } from './pipe';
import { EventfdKind } from './eventfd';
import { SignalfdKind } from './signalfd';
import { TimerfdKind } from './timerfd';
import { EpollKind } from './epoll';
import { InotifyKind } from './inotify';
import { memfdHolders, MemfdKind } from './memfd';
import { ghostHolders } from './ghost-file';
import { compareLocks, dumpLocks, restoreLocks } from './locks';
import { PidfdKind } from './pidfd';
import { FanotifyKind } from './fanotify';

registerFsImages();

/**
 * Files: the kinds of open file this plugin owns, plus cwd, root, umask and file locks. The fd
 * table itself is restored by the core just before restore() runs.
 */
@injectable()
export class FilesPlugin implements ResourcePlugin {
  readonly name = 'fs';
  readonly phase = 'resources' as const;
  readonly fileKinds: readonly FileKind[];
  private readonly memfd: MemfdKind;

  /** Services of the run (engine/services.ts): the kinds that park fds or share inodes get them. */
  constructor(@inject(TASK_FDS) fds: TaskFds, @inject(DUMPED_INODES) dumped: DumpedInodes, @inject(SHARED_INODES) shared: SharedInodes) {
    this.fileKinds = [
      new RegularFileKind(), new PipeKind(fds), new FifoKind(fds), new EventfdKind(), new SignalfdKind(), new TimerfdKind(),
      new EpollKind(), new InotifyKind(), (this.memfd = new MemfdKind(dumped, shared, fds)), new PidfdKind(), new FanotifyKind(),
    ];
  }

  async dump(ctx: DumpContext): Promise<void> {
    dumpFsState(ctx);
    dumpLocks(ctx);
  }

  async restore(ctx: RestoreContext): Promise<void> {
    restoreFsState(ctx);
  }

  // after the memory phase, which opens and closes in the task the files it maps
  readonly laterSteps = [{ phase: 'task-state' as const, restore: restoreLocks }];

  async compare(ctx: CompareContext): Promise<Difference[]> {
    return [...compareFsState(ctx), ...compareLocks(ctx)];
  }

  identities(ctx: CompareContext): IdentityHolder[] {
    return [...memfdHolders(ctx, this.memfd), ...ghostHolders(ctx)];
  }
}

export default FilesPlugin;

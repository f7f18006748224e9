import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import {
  IMAGE_STORE, TASK_FDS,
  type CompareContext, type Difference, type DumpContext, type ImageStore, type ResourcePlugin, type RestoreContext, type TaskFds,
} from '@amber/core';
import { compareSessions, restoreTerminalState } from './ctty';
import { dumpTerminals, putQueuesBack } from './dump-ttys';
import { registerTtyImages } from './images';
import { releaseCallersMode } from './outside-terminal';
import { TtyFileKind } from './tty-file';

registerTtyImages();

/** Terminals: pseudo-terminal pairs, controlling terminals, the caller's terminal (--shell-job). */
@injectable()
export class TerminalsPlugin implements ResourcePlugin {
  readonly name = 'tty';
  readonly phase = 'resources' as const;
  readonly fileKinds: readonly TtyFileKind[];
  private readonly kind: TtyFileKind;

  constructor(@inject(IMAGE_STORE) private readonly store: ImageStore, @inject(TASK_FDS) fds: TaskFds) {
    this.kind = new TtyFileKind(store, fds);
    this.fileKinds = [this.kind];
  }

  async dump(ctx: DumpContext): Promise<void> {
    dumpTerminals(ctx, (fd) => this.kind.claims(fd));
  }

  /** Queues read out at dump go back unless the tree is gone (a dump without --leave-running that succeeded). */
  async afterDump(ctx: DumpContext, succeeded: boolean): Promise<void> {
    if (!succeeded || ctx.options.leaveRunning) putQueuesBack(ctx);
  }

  // after the fd tables (same phase): every terminal end is open by now. A step, not restore():
  // a dump without terminals (--only mm) needs nothing of this plugin to be restored.
  readonly laterSteps = [{ phase: 'resources' as const, restore: restoreTerminalState }];

  async afterRestore(ctx: RestoreContext, succeeded: boolean): Promise<void> {
    releaseCallersMode(ctx, succeeded);
  }

  async compare(ctx: CompareContext): Promise<Difference[]> {
    return compareSessions(ctx, this.store);
  }
}

export default TerminalsPlugin;

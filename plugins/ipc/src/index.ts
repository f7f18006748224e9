import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import { inIpcnsOf, LOGGER, shmRemove, type Logger, type CompareContext, type Difference, type DumpContext, type IdentityHolder, type LaterRestoreStep, type ResourcePlugin, type RestoreContext } from '@amber/core';
import './objs-images';
import { MqueueKind, restoreNotifications } from './mqueue';
import { compareObjects, dumpNamespace, dumpObjects, prepareObjects, releaseDumpedObjects, restoreObjects, undoObjects } from './objs';
import { dumpShm, SysvShmMappingKind } from './shm';
import { removeMarkedShm, restoreShm, undoShm } from './shm-restore';
import { compareShm, shmHolders } from './shm-compare';
import type { IpcShmEntry } from './images';

/** SysV IPC (shared memory, message queues, semaphores) and POSIX message queues. */
@injectable()
export class IpcPlugin implements ResourcePlugin {
  readonly name = 'ipc';
  readonly phase = 'shared' as const;
  readonly mappingKinds = [new SysvShmMappingKind()];
  readonly fileKinds = [new MqueueKind(dumpNamespace)];
  readonly laterSteps: readonly LaterRestoreStep[] = [
    { phase: 'task-state', restore: (ctx) => removeMarkedShm(ctx) },
    { phase: 'task-state', restore: (ctx) => restoreNotifications(ctx) },
  ];

  constructor(@inject(LOGGER) private readonly log: Logger) {}

  async dump(ctx: DumpContext): Promise<void> {
    // a pre-dump is memory only: the SysV mappings are mm's VMAs there, their segments dumped by the final dump
    if (ctx.options.preDump) return;
    const ns = dumpNamespace(ctx);
    inIpcnsOf(ctx.tasks[0].pid, () => {
      ctx.state('ipc:dumped-shm', () => dumpShm(ctx, ns));
      dumpObjects(ctx, ns);
    });
  }

  /**
   * A complete dump that ends the tree takes its segments with it: in the host's namespace they
   * would outlive it, and their ids, taken, would keep the restore from having them again.
   */
  async afterDump(ctx: DumpContext, succeeded: boolean): Promise<void> {
    releaseDumpedObjects(ctx, succeeded);
    if (!succeeded || ctx.options.leaveRunning || ctx.options.preDump || !dumpNamespace(ctx).host) return;
    for (const e of ctx.state<IpcShmEntry[]>('ipc:dumped-shm', () => [])) {
      if (!(e.desc.mode & 0o1000)) shmRemove(e.desc.id);
    }
  }

  async restore(ctx: RestoreContext): Promise<void> {
    inIpcnsOf(ctx.tasks[0].pid, () => {
      prepareObjects(ctx, 1);
      restoreShm(ctx, 1);
      restoreObjects(ctx, 1);
    });
  }

  async afterRestore(ctx: RestoreContext, succeeded: boolean): Promise<void> {
    if (succeeded) return;
    for (const p of undoShm(ctx)) this.log.warn(`restore undo: ${p}`);
    undoObjects(ctx);
  }

  async compare(ctx: CompareContext): Promise<Difference[]> {
    return inIpcnsOf(ctx.pids[0], () => [...compareShm(ctx, 1), ...compareObjects(ctx, 1)]);
  }

  identities(ctx: CompareContext): IdentityHolder[] {
    return shmHolders(ctx);
  }
}

export default IpcPlugin;

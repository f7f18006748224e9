import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { DumpContext, ResourcePlugin, RestoreContext } from '@amber/core';
import { registerUnixImages } from './images';
import { closeParked } from './parking';
import { releaseInFlight } from './queues';
import { UnixSocketKind } from './unix-socket';

registerUnixImages();

/** AF_UNIX sockets: every type, names, peers, queues, options. */
@injectable()
export class UnixSocketsPlugin implements ResourcePlugin {
  readonly name = 'unix';
  readonly phase = 'resources' as const;
  readonly fileKinds = [new UnixSocketKind()];

  async afterDump(ctx: DumpContext): Promise<void> {
    releaseInFlight(ctx);
  }

  // once every fd table is filled: what is still parked (nobody took it) goes
  readonly laterSteps = [{ phase: 'resources' as const, restore: (ctx: RestoreContext) => ctx.tasks.forEach((task) => closeParked(ctx, task)) }];
}

export default UnixSocketsPlugin;

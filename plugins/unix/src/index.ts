import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { ResourcePlugin, RestoreContext } from '@amber/core';
import { registerUnixImages } from './images';
import { closeParked } from './parking';
import { UnixSocketKind } from './unix-socket';

registerUnixImages();

/** AF_UNIX sockets: every type, names, peers, queues, options. */
@injectable()
export class UnixSocketsPlugin implements ResourcePlugin {
  readonly name = 'unix';
  readonly phase = 'resources' as const;
  readonly fileKinds = [new UnixSocketKind()];

  async restore(ctx: RestoreContext): Promise<void> {
    for (const task of ctx.tasks) closeParked(ctx, task);
  }
}

export default UnixSocketsPlugin;

import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { DumpContext, ResourcePlugin } from '@amber/core';
import { releaseInFlight } from './queues';
import { UnixSocketKind } from './unix-socket';

/** AF_UNIX sockets: every type, names, peers, queues, options. */
@injectable()
export class UnixSocketsPlugin implements ResourcePlugin {
  readonly name = 'unix';
  readonly phase = 'resources' as const;
  readonly fileKinds = [new UnixSocketKind()];

  async afterDump(ctx: DumpContext): Promise<void> {
    releaseInFlight(ctx);
  }
}

export default UnixSocketsPlugin;

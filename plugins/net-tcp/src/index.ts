import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { DumpContext, FileKind, ResourcePlugin, RestoreContext } from '@amber/core';
import { afterDumpUnlock, afterRestoreUnlock, lockForDump } from './lock-step';

/**
 * Inet sockets: TCP (through repair mode), and the other inet protocols, netlink and packet
 * sockets that the network helpers add as their own kinds.
 */
@injectable()
export class NetTcpPlugin implements ResourcePlugin {
  readonly name = 'net-tcp';
  readonly phase = 'resources' as const;
  readonly fileKinds: readonly FileKind[] = [];

  async dump(ctx: DumpContext): Promise<void> {
    // before any socket is described (the fd table runs after every plugin's dump)
    lockForDump(ctx);
  }

  async afterDump(ctx: DumpContext, succeeded: boolean): Promise<void> {
    afterDumpUnlock(ctx, succeeded);
  }

  async afterRestore(ctx: RestoreContext, succeeded: boolean): Promise<void> {
    afterRestoreUnlock(ctx, succeeded);
  }
}

export default NetTcpPlugin;

import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import { IMAGE_STORE, close, repairOff, type DumpContext, type FileKind, type ImageStore, type ResourcePlugin, type RestoreContext } from '@amber/core';
import { registerNetImages } from './images';
import { InetSocketKind, type MadeSocket } from './inet-socket';
import type { InetProtocol } from './inet-protocol';
import { repairedCopies, TcpProtocol } from './tcp';
import { NetlinkSocketKind } from './netlink';
import { PacketSocketKind } from './packet';
import { UdpProtocol } from './udp';
import { PingProtocol, RawProtocol } from './raw';

registerNetImages();

export type { InetProtocol, DumpedInetSocket, LiveInetSocket } from './inet-protocol';
import { afterDumpUnlock, afterRestoreUnlock, lockForDump } from './lock-step';

/**
 * Inet sockets: one fd kind for AF_INET/AF_INET6 that dispatches by protocol (TCP here; UDP and
 * raw sockets are modules of their own), TCP connections through repair mode.
 */
@injectable()
export class NetTcpPlugin implements ResourcePlugin {
  readonly name = 'net-tcp';
  readonly phase = 'resources' as const;
  readonly fileKinds: readonly FileKind[];
  private readonly protocols: readonly InetProtocol[];

  constructor(@inject(IMAGE_STORE) store: ImageStore) {
    this.protocols = [new TcpProtocol(store), new UdpProtocol(), new PingProtocol(), new RawProtocol()];
    this.fileKinds = [new InetSocketKind(this.protocols), new NetlinkSocketKind(), new PacketSocketKind()];
  }

  /**
   * A dump that failed, or leaves the tree running, takes its connections out of repair mode
   * (the tree is still frozen); one that kills the tree leaves them in it, so they die without a
   * packet. Either way amber's copies are closed.
   */
  async afterDump(ctx: DumpContext, succeeded: boolean): Promise<void> {
    const keepRepair = succeeded && !ctx.options.leaveRunning;
    if (!keepRepair) for (const fd of repairedCopies(ctx)) repairOff(fd);
    for (const fd of ctx.state('net-tcp:copies', () => [] as number[])) close(fd);
    // the sockets are live again (or stay dead until the restore): the lock goes, or stays
    afterDumpUnlock(ctx, succeeded);
  }

  /** The network lock, before any socket is described (the fd table runs after every plugin's dump). */
  async dump(ctx: DumpContext): Promise<void> {
    lockForDump(ctx);
  }

  /** Once the restored tree runs (its sockets left repair mode at resume), or the restore failed. */
  async afterRestore(ctx: RestoreContext, succeeded: boolean): Promise<void> {
    afterRestoreUnlock(ctx, succeeded);
  }

  readonly laterSteps = [{
    phase: 'resume' as const,
    restore: (ctx: RestoreContext): void => {
      const made = ctx.state('net-tcp:made', () => new Map<number, MadeSocket>());
      for (const m of made.values()) m.protocol.finish?.(ctx, m.entry, m.fd);
      for (const m of made.values()) close(m.fd);
      made.clear();
    },
  }];
}

export default NetTcpPlugin;

import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import {
  AF, IMAGE_STORE, SOCK, close, repairOff, repairOn, socket,
  type DumpContext, type FeatureCheck, type FileKind, type ImageStore, type ResourcePlugin, type RestoreContext,
} from '@amber/core';
import { registerNetImages } from './images';
import { InetSocketKind, type MadeSocket } from './inet-socket';
import type { InetProtocol } from './inet-protocol';
import { repairedCopies, TcpProtocol } from './tcp';
import { afterDumpUnlock, lockForDump, lockForRestore, restoreUnlock } from './lock-step';
import { NetlinkSocketKind } from './netlink';
import { PacketSocketKind } from './packet';
import { UdpProtocol } from './udp';
import { PingProtocol, RawProtocol } from './raw';

registerNetImages();

export type { InetProtocol, DumpedInetSocket, LiveInetSocket } from './inet-protocol';

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

  /** A restore that failed removes the lock too (one that succeeded did in its resume phase). */
  async afterRestore(ctx: RestoreContext, succeeded: boolean): Promise<void> {
    restoreUnlock(ctx, succeeded);
  }

  checks(): FeatureCheck[] {
    return [{ name: 'TCP repair mode', present: tcpRepairWorks(), required: false, why: 'dumping and restoring established TCP connections (--tcp-established)' }];
  }

  readonly laterSteps = [{
    // before the fd table makes any socket (the start of the resources phase)
    phase: 'shared' as const,
    restore: (ctx: RestoreContext): void => lockForRestore(ctx),
  }, {
    phase: 'resume' as const,
    restore: (ctx: RestoreContext): void => {
      const made = ctx.state('net-tcp:made', () => new Map<number, MadeSocket>());
      for (const m of made.values()) m.protocol.finish?.(ctx, m.entry, m.fd);
      for (const m of made.values()) close(m.fd);
      made.clear();
    },
  }, {
    // the sockets are live now: the network lock goes before the tree runs
    phase: 'resume' as const,
    restore: (ctx: RestoreContext): void => restoreUnlock(ctx, true),
  }];
}

/** TCP repair mode on a socket of amber's own (it needs CAP_NET_ADMIN in amber's network namespace). */
function tcpRepairWorks(): boolean {
  const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC);
  try {
    repairOn(fd);
    return true;
  } catch {
    return false;
  } finally {
    close(fd);
  }
}

export default NetTcpPlugin;

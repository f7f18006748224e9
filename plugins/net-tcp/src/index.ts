import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { FileKind, ResourcePlugin } from '@amber/core';
import { NetlinkSocketKind } from './netlink';
import { PacketSocketKind } from './packet';

/**
 * Inet sockets: TCP (through repair mode), and the other inet protocols, netlink and packet
 * sockets that the network helpers add as their own kinds.
 */
@injectable()
export class NetTcpPlugin implements ResourcePlugin {
  readonly name = 'net-tcp';
  readonly phase = 'resources' as const;
  readonly fileKinds: readonly FileKind[] = [
    new NetlinkSocketKind(),
    new PacketSocketKind(),
  ];
}

export default NetTcpPlugin;

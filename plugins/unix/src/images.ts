import * as path from 'node:path';
import { registerImageType, type FownEntry } from '@amber/core';

const PROTO = path.resolve(__dirname, '..', 'proto', 'sk-unix.proto');

export const SK_QUEUES = 'sk-queues';
/** uflags: the peer is a process outside the dumped tree (CRIU's USK_EXTERN). */
export const USK_EXTERN = 1;

export interface SkOptsEntry {
  soSndbuf: number;
  soRcvbuf: number;
  soSndTmoSec: bigint;
  soSndTmoUsec: bigint;
  soRcvTmoSec: bigint;
  soRcvTmoUsec: bigint;
  soRcvlowat?: number;
  soPasscred?: boolean;
  soPasssec?: boolean;
}

export interface FilePermsEntry {
  mode: number;
  uid: number;
  gid: number;
}

/** files.img's `usk` member: one unix socket description. */
export interface UnixSkEntry {
  id: number;
  ino: number;
  type: number;
  state: number;
  flags: number;
  uflags: number;
  backlog: number;
  peer: number;
  fown: FownEntry;
  opts: SkOptsEntry;
  name: Buffer;
  shutdown?: number;
  filePerms?: FilePermsEntry;
  nameDir?: string;
  deleted?: boolean;
  queuedOn?: number;
  acceptedFrom?: number;
  peekOff?: number;
  peerName?: Buffer;
  vfsDev?: number;
  vfsIno?: number;
  icons?: number[];
  rqlen?: number;
}

export interface ScmEntry {
  type: number;
  rights: number[];
}

/** sk-queues.img: a record queued to socket idFor, its data following it. */
export interface SkPacketEntry {
  idFor: number;
  length: number;
  addr?: Buffer;
  scm: ScmEntry[];
  ucred?: { pid: number; uid: number; gid: number };
}

export function registerUnixImages(): void {
  registerImageType({
    type: SK_QUEUES, magic: 0x56264026, protoFile: PROTO, message: 'amberunix.SkPacketEntry',
    blobLength: (e) => (e as SkPacketEntry).length,
  });
}

const perRun = new WeakMap<object, Map<string, unknown>>();

/** State kept for one dump or restore, keyed by its context (the core's ctx.state once merged). */
export function stateOf<T>(ctx: object, key: string, init: () => T): T {
  let m = perRun.get(ctx);
  if (!m) perRun.set(ctx, (m = new Map()));
  if (!m.has(key)) m.set(key, init());
  return m.get(key) as T;
}

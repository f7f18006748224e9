// Generated from core/proto/inventory.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { TaskKobjIdsEntry } from './ids';

export const LsmType = {
  NO_LSM: 0,
  SELINUX: 1,
  APPARMOR: 2,
} as const;

export interface InventoryEntry {
  /** 2 means "images v1.1": every other image carries the common magic. */
  imgVersion: number;
  fdinfoPerId?: boolean;
  rootIds?: TaskKobjIdsEntry;
  nsPerId?: boolean;
  rootCgSet?: number;
  /** LsmType */
  lsmtype?: number;
  /** field 7 is unused on the wire */
  dumpUptime?: bigint;
  preDumpMode?: number;
  tcpClose?: boolean;
  networkLockMethod?: number;
  /**
   * amber's extension: the plugins whose resources this dump holds (a partial dump via --only
   * names fewer than all). CRIU's readers skip unknown fields.
   */
  amberPlugins: string[];
  /**
   * amber's extension: every image of the set with its size and checksum, so a restore can
   * refuse a set with an image missing, cut short, swapped or altered.
   */
  amberImages: AmberImageDigest[];
}

export interface AmberImageDigest {
  /** file name in the image directory, e.g. core-4242.img */
  name: string;
  size: bigint;
  /** sha256 of the whole file; of a pages file, of its samples (see sampled) */
  sha256: Buffer;
  /** true for raw pages files: the hash covers evenly spaced pages, not every byte */
  sampled?: boolean;
}

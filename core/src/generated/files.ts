// Generated from core/proto/files.proto by `npm run protos` (scripts/protos.js): do not edit.

export const FdTypes = {
  UND: 0,
  REG: 1,
  PIPE: 2,
  FIFO: 3,
  INETSK: 4,
  UNIXSK: 5,
  EVENTFD: 6,
  EVENTPOLL: 7,
  INOTIFY: 8,
  SIGNALFD: 9,
  PACKETSK: 10,
  TTY: 11,
  FANOTIFY: 12,
  NETLINKSK: 13,
  NS: 14,
  TUNF: 15,
  EXT: 16,
  TIMERFD: 17,
  MEMFD: 18,
  BPFMAP: 19,
  PIDFD: 20,
  /** amber's own: POSIX message queues (CRIU has no fd type for them) */
  MQUEUE: 40,
  /** pseudo types used at restore time only, at the top of the range */
  CTL_TTY: 65534,
  AUTOFS_PIPE: 65535,
} as const;

/** F_SETOWN / F_SETSIG state of a file description. */
export interface FownEntry {
  uid: number;
  euid: number;
  signum: number;
  pidType: number;
  pid: number;
}

export interface FdinfoEntry {
  /** id of the file description in files.img */
  id: number;
  /** fd flags (FD_CLOEXEC), not the open flags */
  flags: number;
  /** FdTypes */
  type: number;
  fd: number;
  xattrSecuritySelinux?: string;
}

export interface RegFileEntry {
  id: number;
  /** open(2) flags */
  flags: number;
  pos: bigint;
  /** number 4 is not used */
  fown: FownEntry;
  name: string;
  mntId?: number;
  size?: bigint;
  ext?: boolean;
  mode?: number;
  buildId: number[];
  checksum?: number;
  checksumConfig?: number;
  checksumParameter?: number;
}

/**
 * One file description: its kind (`type`) and id, and exactly one per-kind member matching
 * `type`. The core declares the members that more than one plugin uses (reg: fds, mappings,
 * cwd/root, a FIFO's path); every other member is declared by the file kind that owns it, with
 * CRIU's field number, and added to this message when its plugin loads (see FileKind.member).
 */
export interface FileEntry {
  /** FdTypes */
  type: number;
  id: number;
  reg?: RegFileEntry;
}

// Generated from plugins/tty/proto/tty.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { FownEntry } from '@amber/core';

export interface WinsizeEntry {
  wsRow: number;
  wsCol: number;
  wsXpixel: number;
  wsYpixel: number;
}

export interface TermiosEntry {
  cIflag: number;
  cOflag: number;
  cCflag: number;
  cLflag: number;
  cLine: number;
  cIspeed: number;
  cOspeed: number;
  cCc: number[];
}

export interface TtyPtyEntry {
  index: number;
}

export const TtyType = {
  UNKNOWN: 0,
  PTY: 1,
  CONSOLE: 2,
  VT: 3,
  /** an fd of /dev/tty: the controlling terminal of whoever opened it */
  CTTY: 4,
  /** a terminal outside the dumped tree (--shell-job): recorded, not dumped */
  EXT_TTY: 5,
  SERIAL: 6,
} as const;

export interface TtyInfoEntry {
  id: number;
  /** TtyType */
  type: number;
  /** TIOCSPTLCK (a master's): the slave cannot be opened */
  locked: boolean;
  /** TIOCEXCL of this end */
  exclusive: boolean;
  /** TIOCPKT (a master's) */
  packetMode: boolean;
  /** the session this terminal controls, and its foreground group (0: none) */
  sid: number;
  pgrp: number;
  rdev: number;
  termios?: TermiosEntry;
  termiosLocked?: TermiosEntry;
  winsize?: WinsizeEntry;
  pty?: TtyPtyEntry;
  dev?: number;
  /** a slave's owner */
  uid?: number;
  gid?: number;
  /** amber: a slave's permission bits */
  mode?: number;
  /** amber: the terminal's device number behind a /dev/tty fd (TIOCGDEV) */
  cttyRdev?: number;
}

export interface TtyDataEntry {
  /** the TtyInfoEntry of the end these bytes are read from */
  ttyId: number;
  data: Buffer;
  /** amber: in canonical mode, how many bytes of data are completed lines; the rest is a partial line */
  linesBytes?: number;
  /** amber: the offsets in data where a line ended by VEOF (not itself in data) ends */
  eofAt: number[];
}

export interface TtyFileEntry {
  id: number;
  ttyInfoId: number;
  flags: number;
  fown: FownEntry;
  regfId?: number;
}

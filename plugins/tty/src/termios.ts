import { NCCS, type Termios, type Winsize } from '@amber/core';
import type { TermiosEntry, WinsizeEntry } from './images';

// termios bits (asm-generic/termbits.h) amber has to reason about
export const L = { ISIG: 0o1, ICANON: 0o2, ECHO: 0o10, ECHOE: 0o20, ECHOK: 0o40, ECHONL: 0o100, TOSTOP: 0o400, ECHOCTL: 0o1000, ECHOPRT: 0o2000, ECHOKE: 0o4000, FLUSHO: 0o10000, PENDIN: 0o40000, IEXTEN: 0o100000, EXTPROC: 0o200000 } as const;
export const I = { INPCK: 0o20, ISTRIP: 0o40, INLCR: 0o100, IGNCR: 0o200, ICRNL: 0o400, IUCLC: 0o1000, IXON: 0o2000, IXOFF: 0o10000, IMAXBEL: 0o20000 } as const;
export const OPOST = 0o1;
export const VC = { INTR: 0, QUIT: 1, ERASE: 2, KILL: 3, EOF: 4, TIME: 5, MIN: 6, SWTC: 7, START: 8, STOP: 9, SUSP: 10, EOL: 11, REPRINT: 12, DISCARD: 13, WERASE: 14, LNEXT: 15, EOL2: 16 } as const;

export function termiosEntry(t: Termios): TermiosEntry {
  return { cIflag: t.iflag, cOflag: t.oflag, cCflag: t.cflag, cLflag: t.lflag, cLine: t.line, cIspeed: t.ispeed, cOspeed: t.ospeed, cCc: t.cc.slice(0, NCCS) };
}

export function termiosOf(e: TermiosEntry): Termios {
  return { iflag: e.cIflag, oflag: e.cOflag, cflag: e.cCflag, lflag: e.cLflag, line: e.cLine, ispeed: e.cIspeed, ospeed: e.cOspeed, cc: [...e.cCc] };
}

export function winsizeEntry(w: Winsize): WinsizeEntry {
  return { wsRow: w.row, wsCol: w.col, wsXpixel: w.xpixel, wsYpixel: w.ypixel };
}

export function winsizeOf(e: WinsizeEntry): Winsize {
  return { row: e.wsRow, col: e.wsCol, xpixel: e.wsXpixel, ypixel: e.wsYpixel };
}

export const isCanonical = (t: Termios) => (t.lflag & L.ICANON) !== 0;

/** t without canonical input, reads returning at once whatever is queued (VMIN = VTIME = 0). */
export function drainMode(t: Termios): Termios {
  const cc = [...t.cc];
  cc[VC.MIN] = 0;
  cc[VC.TIME] = 0;
  return { ...t, lflag: t.lflag & ~L.ICANON, cc };
}

/**
 * t as it must be while amber writes queued bytes back: the bytes were read after the line
 * discipline had processed them once, so nothing may act on them again (no echo, no signal, no
 * input mapping, no output processing, no line editing). Canonical input stays canonical so lines
 * stay lines; its editing characters become `unused`, a byte the refilled data does not hold.
 */
export function refillMode(t: Termios, unused: number): Termios {
  const cc = [...t.cc];
  for (const v of [VC.INTR, VC.QUIT, VC.ERASE, VC.KILL, VC.SWTC, VC.START, VC.STOP, VC.SUSP, VC.REPRINT, VC.DISCARD, VC.WERASE, VC.LNEXT]) cc[v] = unused;
  return {
    ...t,
    lflag: t.lflag & ~(L.ECHO | L.ECHOE | L.ECHOK | L.ECHONL | L.ECHOCTL | L.ECHOPRT | L.ECHOKE | L.ISIG | L.TOSTOP | L.FLUSHO | L.PENDIN | L.EXTPROC),
    iflag: t.iflag & ~(I.INPCK | I.ISTRIP | I.INLCR | I.IGNCR | I.ICRNL | I.IUCLC | I.IXON | I.IXOFF | I.IMAXBEL),
    oflag: t.oflag & ~OPOST,
    cc,
  };
}

export function sameTermios(a: Termios, b: Termios): boolean {
  return a.iflag === b.iflag && a.oflag === b.oflag && a.cflag === b.cflag && a.lflag === b.lflag && a.line === b.line &&
    a.ispeed === b.ispeed && a.ospeed === b.ospeed && a.cc.every((c, i) => c === b.cc[i]);
}

export function describeTermios(t: Termios): string {
  const o = (n: number) => `0${n.toString(8)}`;
  return `iflag ${o(t.iflag)} oflag ${o(t.oflag)} cflag ${o(t.cflag)} lflag ${o(t.lflag)} line ${t.line} speed ${t.ispeed}/${t.ospeed} cc ${t.cc.join(',')}`;
}

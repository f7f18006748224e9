import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { AmberError } from '../kernel/errors';

// Parsers for the /proc files amber reads. Each takes the text so unit tests can feed recorded
// files; the read* helpers fetch it.

export class ProcError extends AmberError {
  constructor(readonly pid: number, readonly file: string, why: string) {
    super(`pid ${pid}: cannot read /proc/${pid}/${file}: ${why}`);
  }
}

export function procRead(pid: number | 'self', file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch (e) {
    throw new ProcError(typeof pid === 'number' ? pid : process.pid, file, (e as NodeJS.ErrnoException).code ?? String(e));
  }
}

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Its controlling terminal's device number (new_encode_dev), 0 when it has none. */
  ttyNr: number;
  flags: number;
  nice: number;
  numThreads: number;
  startCode: bigint;
  endCode: bigint;
  startStack: bigint;
  startData: bigint;
  endData: bigint;
  startBrk: bigint;
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
  exitCode: number;
}

/** /proc/PID/stat. comm may hold spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).trim().split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  const n = (i: number) => Number(f[i - 3]);
  const b = (i: number) => BigInt(f[i - 3] ?? '0');
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: f[0],
    ppid: n(4), pgrp: n(5), session: n(6), ttyNr: n(7), flags: n(9), nice: n(19), numThreads: n(20),
    startCode: b(26), endCode: b(27), startStack: b(28),
    startData: b(45), endData: b(46), startBrk: b(47),
    argStart: b(48), argEnd: b(49), envStart: b(50), envEnd: b(51), exitCode: n(52),
  };
}

export function readStat(pid: number, tid?: number): ProcStat {
  return parseStat(procRead(pid, tid === undefined ? 'stat' : `task/${tid}/stat`));
}

/** /proc/PID/status as a key -> value map. */
export function parseStatus(text: string): Map<string, string> {
  const out = new Map<string, string>();
  // by index, not split: a tree's dump parses hundreds of these (no TurboFan: see wire-encode.ts)
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const i = text.indexOf(':', start);
    if (i > start && i < end) out.set(text.slice(start, i), text.slice(i + 1, end).trim());
    start = end + 1;
  }
  return out;
}

export interface MapsEntry {
  start: bigint;
  end: bigint;
  /** "rwxp"-style permission string. */
  perms: string;
  offset: bigint;
  dev: string;
  inode: number;
  /** Path, "[heap]"-style name, or "" for anonymous memory. */
  path: string;
}

export function parseMaps(text: string): MapsEntry[] {
  const out: MapsEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), perms: m[3], offset: BigInt('0x' + m[4]),
      dev: m[5], inode: Number(m[6]), path: m[7],
    });
  }
  return out;
}

export function readMaps(pid: number): MapsEntry[] {
  return parseMaps(procRead(pid, 'maps'));
}

/**
 * VmFlags of every VMA in /proc/PID/smaps, keyed by start address. A task's smaps is ~25 lines a
 * VMA and a tree's dump reads thousands of them, so each VMA's block is jumped over whole (its
 * VmFlags line is its last): a walk line by line was ~0.2 us a line without TurboFan. Text of any
 * other shape (a block without VmFlags, a line that could be a VMA's inside one) goes line by line.
 */
export function parseSmapsVmFlags(text: string): Map<bigint, string[]> {
  const out = new Map<bigint, string[]>();
  for (let pos = 0; pos < text.length; ) {
    VMA_HEAD_AT.lastIndex = pos;
    const head = VMA_HEAD_AT.exec(text);
    const flags = text.indexOf('\nVmFlags:', pos);
    LINE_OF_HEX.lastIndex = pos;
    const next = LINE_OF_HEX.exec(text);
    if (!head || flags < 0 || (next && next.index < flags)) return vmFlagsByLine(text);
    let end = text.indexOf('\n', flags + 1);
    if (end < 0) end = text.length;
    out.set(BigInt('0x' + head[1]), text.slice(flags + 9, end).trim().split(/\s+/));
    pos = end + 1;
  }
  return out;
}

/** A VMA's first line starts with its range; the ~20 lines of counters after it do not. */
const VMA_HEAD = /^([0-9a-f]+)-[0-9a-f]+ /;
const VMA_HEAD_AT = /([0-9a-f]+)-[0-9a-f]+ /y;
const LINE_OF_HEX = /\n[0-9a-f]/g;

function vmFlagsByLine(text: string): Map<bigint, string[]> {
  const out = new Map<bigint, string[]>();
  let current: bigint | undefined;
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k];
    if (line.startsWith('VmFlags:')) {
      if (current !== undefined) out.set(current, line.slice(8).trim().split(/\s+/));
      continue;
    }
    const head = VMA_HEAD.exec(line);
    if (head) current = BigInt('0x' + head[1]);
  }
  return out;
}

export interface FdInfo {
  pos: bigint;
  flags: number;
  mntId: number;
  /** Every other "key: value" line, for kind-specific fields (eventfd-count, tfd, ...). */
  extra: Map<string, string>;
  /** The whole file as read, for what repeats a key (the lock: lines). */
  text?: string;
}

export function parseFdinfo(text: string): FdInfo {
  const fields = parseStatus(text);
  return {
    text,
    pos: BigInt(fields.get('pos') ?? '0'),
    flags: parseInt(fields.get('flags') ?? '0', 8),
    mntId: Number(fields.get('mnt_id') ?? '0'),
    extra: fields,
  };
}

export function readFdinfo(pid: number, fd: number): FdInfo {
  return parseFdinfo(procRead(pid, `fdinfo/${fd}`));
}

export interface FdLink {
  fd: number;
  /** readlink of /proc/PID/fd/N: a path, "pipe:[123]", "anon_inode:[eventfd]", ... */
  link: string;
}

/** The task's open fds (from `lowest` up: the others are not even readlink'ed), in order. */
export function listFds(pid: number, lowest = 0): FdLink[] {
  const out: FdLink[] = [];
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    const fd = Number(name);
    if (fd < lowest) continue;
    try {
      out.push({ fd, link: readlinkSync(`/proc/${pid}/fd/${name}`) });
    } catch {
      // closed while we listed: the task is frozen, so only amber's own transient fds do this
    }
  }
  return out.sort((a, b) => a.fd - b.fd);
}

export function listThreads(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
}

/** The children of every thread of pid (`tids` when the caller knows them already). */
export function listChildren(pid: number, tids = listThreads(pid)): number[] {
  const out: number[] = [];
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // thread exited
    }
  }
  return out;
}

/** /proc/PID/auxv as pairs of u64 words, up to and including AT_NULL. */
export function parseAuxv(raw: Buffer): bigint[] {
  const out: bigint[] = [];
  for (let off = 0; off + 16 <= raw.length; off += 16) {
    const type = raw.readBigUInt64LE(off);
    out.push(type, raw.readBigUInt64LE(off + 8));
    if (type === 0n) break;
  }
  return out;
}

export function readAuxv(pid: number): bigint[] {
  return parseAuxv(readFileSync(`/proc/${pid}/auxv`));
}

export function readLink(pid: number, name: string): string {
  try {
    return readlinkSync(`/proc/${pid}/${name}`);
  } catch (e) {
    throw new ProcError(pid, name, (e as NodeJS.ErrnoException).code ?? String(e));
  }
}

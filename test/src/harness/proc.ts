import * as fs from 'node:fs';

export interface FdEntry {
  fd: number;
  /** readlink of /proc/PID/fd/N. */
  link: string;
  /** fdinfo flags, octal as the kernel prints them (includes O_CLOEXEC as 02000000). */
  flags: string;
  pos: number;
}

export interface ProcSnapshot {
  pid: number;
  /** /proc/PID/maps lines with single spaces between fields. */
  maps: string[];
  /** Selected /proc/PID/status fields, whitespace collapsed. */
  status: Record<string, string>;
  fds: FdEntry[];
}

// SigQ is left out: it counts the signals queued for the whole uid, other processes' too.
export const STATUS_FIELDS = [
  'Name', 'Umask', 'Tgid', 'Pid', 'PPid', 'Uid', 'Gid', 'Groups', 'Threads', 'SigPnd', 'ShdPnd',
  'SigBlk', 'SigIgn', 'SigCgt', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp',
  'VmSize', 'VmExe', 'VmLib', 'VmStk', 'VmData',
] as const;

function normaliseMapsLine(line: string): string {
  const fields = line.trim().split(/\s+/);
  // The path (field 6 onwards) may itself contain spaces.
  return [...fields.slice(0, 5), fields.slice(5).join(' ')].join(' ').trimEnd();
}

function readFds(pid: number): FdEntry[] {
  const fds: FdEntry[] = [];
  for (const name of fs.readdirSync(`/proc/${pid}/fd`)) {
    const fd = Number(name);
    try {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      const field = (key: string): string => new RegExp(`^${key}:\\s*(\\S+)`, 'm').exec(info)?.[1] ?? '';
      fds.push({ fd, link, flags: field('flags'), pos: Number(field('pos')) });
    } catch {
      // Closed between readdir and readlink: not part of the snapshot.
    }
  }
  return fds.sort((a, b) => a.fd - b.fd);
}

/** Reads maps, status fields and the fd table of a running process. */
export function snapshotProc(pid: number): ProcSnapshot {
  const maps = fs
    .readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map(normaliseMapsLine);
  const status: Record<string, string> = {};
  const wanted = new Set<string>(STATUS_FIELDS);
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    const key = line.slice(0, colon);
    if (colon > 0 && wanted.has(key)) status[key] = line.slice(colon + 1).trim().replace(/\s+/g, ' ');
  }
  return { pid, maps, status, fds: readFds(pid) };
}

export interface DiffOptions {
  /** Status fields not to compare (e.g. PPid, which a restore may legitimately change). */
  ignoreStatus?: string[];
  /** fds whose position is not compared (e.g. the log on fds 1 and 2, which grows). */
  ignorePosOf?: number[];
}

/** Human-readable differences between two snapshots; empty when they match. */
export function diffSnapshots(before: ProcSnapshot, after: ProcSnapshot, opts: DiffOptions = {}): string[] {
  const diffs: string[] = [];
  const a = new Set(before.maps);
  const b = new Set(after.maps);
  for (const line of before.maps) if (!b.has(line)) diffs.push(`maps: lost   ${line}`);
  for (const line of after.maps) if (!a.has(line)) diffs.push(`maps: gained ${line}`);
  const ignore = new Set(opts.ignoreStatus ?? []);
  for (const key of STATUS_FIELDS) {
    if (ignore.has(key) || before.status[key] === after.status[key]) continue;
    diffs.push(`status ${key}: ${before.status[key] ?? '-'} -> ${after.status[key] ?? '-'}`);
  }
  const ignorePos = new Set(opts.ignorePosOf ?? []);
  const afterFds = new Map(after.fds.map((f) => [f.fd, f]));
  for (const f of before.fds) {
    const g = afterFds.get(f.fd);
    afterFds.delete(f.fd);
    if (!g) diffs.push(`fd ${f.fd}: lost (${f.link})`);
    else {
      if (g.link !== f.link) diffs.push(`fd ${f.fd}: link ${f.link} -> ${g.link}`);
      if (g.flags !== f.flags) diffs.push(`fd ${f.fd}: flags ${f.flags} -> ${g.flags}`);
      if (!ignorePos.has(f.fd) && g.pos !== f.pos) diffs.push(`fd ${f.fd}: pos ${f.pos} -> ${g.pos}`);
    }
  }
  for (const g of afterFds.values()) diffs.push(`fd ${g.fd}: gained (${g.link})`);
  return diffs;
}

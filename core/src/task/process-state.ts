import { readFileSync } from 'node:fs';
import { AmberError } from '../kernel/errors';
import { PR } from '../kernel/constants';
import { getRlimitOf } from '../kernel/syscalls';
import type { CredsEntry, ItimerEntry, SignalQueueEntry, TaskRlimitsEntry, TaskTimersEntry, ThreadSasEntry } from '../images';
import type { RemoteSyscall, TableCall } from '../ptrace/remote-syscall';
import { parseStatus, procRead } from './proc';
import type { QueryBatch } from './query-batch';
import { readI32, readI64, readU64, writeU32, writeU64 } from '../kernel/bytes';

// Task state that only the task can report or set: read and written by syscalls injected into it.
// At dump the getters queue their calls on the thread's QueryBatch and read their answers after it ran.

const RLIM_NLIMITS = 16;
const ITIMERS = ['real', 'virt', 'prof'] as const;
const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const SECBIT_KEEP_CAPS = 1 << 4;

export class PrivilegeError extends AmberError {}

export function dumpRlimits(q: QueryBatch): () => TaskRlimitsEntry {
  const slots = q.slot(16 * RLIM_NLIMITS);
  for (let r = 0; r < RLIM_NLIMITS; r++) q.add({ name: 'prlimit64', args: [0, r, 0, slots + BigInt(16 * r)], detail: `resource ${r}` });
  return () => {
    const raw = q.bytes(slots, 16 * RLIM_NLIMITS);
    return { rlimits: Array.from({ length: RLIM_NLIMITS }, (_, r) => ({ cur: readU64(raw, 16 * r), max: readU64(raw, 16 * r + 8) })) };
  };
}

/**
 * Puts the limits back. Raising a hard limit needs CAP_SYS_RESOURCE, which amber may lack: a
 * limit above what the restore helper was given is clipped to it, and reported.
 */
export function rlimitCalls(remote: RemoteSyscall, limits: TaskRlimitsEntry, warn: (m: string) => void): TableCall[] {
  // what the helper was given (read by amber, no stop of the task), then the task's own calls,
  // for the caller's call loop
  const sets = limits.rlimits.map((l, r): TableCall => {
    const hard = getRlimitOf(remote.pid, r).max;
    const max = l.max > hard ? hard : l.max;
    const cur = l.cur > max ? max : l.cur;
    if (max !== l.max) warn(`pid ${remote.pid}: resource limit ${r} had hard limit ${l.max}, restored as ${max} (raising it needs CAP_SYS_RESOURCE)`);
    const buf = Buffer.alloc(16);
    writeU64(buf, 0, cur);
    writeU64(buf, 8, max);
    return { name: 'prlimit64', args: [0, r, buf, 0], detail: `resource ${r}` };
  });
  return sets;
}

export function dumpItimers(q: QueryBatch): () => TaskTimersEntry {
  const slots = ITIMERS.map((_, which) => {
    const slot = q.slot(32);
    q.add({ name: 'getitimer', args: [which, slot] });
    return slot;
  });
  return () => {
    const unset: ItimerEntry = { isec: 0n, iusec: 0n, vsec: 0n, vusec: 0n }; // every one is read below
    const out: TaskTimersEntry = { real: unset, virt: unset, prof: unset, posix: [] };
    ITIMERS.forEach((name, which) => {
      const raw = q.bytes(slots[which], 32);
      out[name] = { isec: readI64(raw, 0), iusec: readI64(raw, 8), vsec: readI64(raw, 16), vusec: readI64(raw, 24) };
    });
    return out;
  };
}

export function itimerCalls(timers: TaskTimersEntry): TableCall[] {
  return ITIMERS.flatMap((name, which): TableCall[] => {
    const t: ItimerEntry = timers[name];
    if (!t.isec && !t.iusec && !t.vsec && !t.vusec) return [];
    const raw = Buffer.alloc(32);
    writeU64(raw, 0, t.isec);
    writeU64(raw, 8, t.iusec);
    writeU64(raw, 16, t.vsec);
    writeU64(raw, 24, t.vusec);
    return [{ name: 'setitimer', args: [which, raw, 0], detail: `itimer ${name}` }];
  });
}

export function dumpAltStack(q: QueryBatch): () => ThreadSasEntry {
  const slot = q.slot(24);
  q.add({ name: 'sigaltstack', args: [0, slot] });
  return () => {
    const raw = q.bytes(slot, 24);
    return { ssSp: readU64(raw, 0), ssFlags: readI32(raw, 8), ssSize: readU64(raw, 16) };
  };
}

export function altStackCalls(sas: ThreadSasEntry): TableCall[] {
  if (sas.ssFlags & SS_DISABLE) return [];
  const raw = Buffer.alloc(24);
  writeU64(raw, 0, sas.ssSp);
  // A thread dumped while running on its alternate stack gets it back as configured, not in use.
  raw.writeInt32LE(sas.ssFlags & ~SS_ONSTACK, 8);
  writeU64(raw, 16, sas.ssSize);
  return [{ name: 'sigaltstack', args: [raw, 0] }];
}

export function dumpChildSubreaper(q: QueryBatch): () => boolean {
  const slot = q.slot(4);
  q.add({ name: 'prctl', args: [PR.GET_CHILD_SUBREAPER, slot] });
  return () => q.bytes(slot, 4).readInt32LE(0) !== 0;
}

export function dumpPdeathsig(q: QueryBatch): () => number {
  const slot = q.slot(4);
  q.add({ name: 'prctl', args: [PR.GET_PDEATHSIG, slot] });
  return () => q.bytes(slot, 4).readInt32LE(0);
}

/** Credentials from the thread's /proc/PID/task/TID/status, and the securebits it reports itself. */
export function dumpCreds(q: QueryBatch, status: () => Map<string, string>): () => CredsEntry {
  const secbits = q.add({ name: 'prctl', args: [PR.GET_SECUREBITS] });
  return () => credsOf(status(), q.result(secbits));
}

function credsOf(st: Map<string, string>, secbits: number): CredsEntry {
  const ids = (k: string) => (st.get(k) ?? '').split(/\s+/).filter(Boolean).map(Number);
  const caps = (k: string) => {
    const v = BigInt('0x' + (st.get(k) ?? '0'));
    return [Number(v & 0xffffffffn), Number(v >> 32n)];
  };
  const [uid, euid, suid, fsuid] = ids('Uid');
  const [gid, egid, sgid, fsgid] = ids('Gid');
  return {
    uid, euid, suid, fsuid, gid, egid, sgid, fsgid,
    capInh: caps('CapInh'), capPrm: caps('CapPrm'), capEff: caps('CapEff'), capBnd: caps('CapBnd'),
    amberCapAmb: caps('CapAmb'),
    secbits, groups: ids('Groups'),
  };
}

/**
 * Who is restoring: amber run through sudo acts for the user who ran sudo, so a crafted image
 * cannot make a process of root (or of anyone else) for them.
 */
export function restoringUser(): { uid: number; gid: number } {
  const sudoUid = process.env.SUDO_UID;
  if (sudoUid && /^\d+$/.test(sudoUid)) return { uid: Number(sudoUid), gid: Number(process.env.SUDO_GID ?? sudoUid) };
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

export function checkCredsAllowed(pid: number, creds: CredsEntry): void {
  const who = restoringUser();
  if (who.uid === 0) return;
  const uids = [creds.uid, creds.euid, creds.suid, creds.fsuid];
  const gids = [creds.gid, creds.egid, creds.sgid, creds.fsgid];
  const capEff = creds.capEff.some((c) => c !== 0) || creds.capPrm.some((c) => c !== 0);
  if (uids.some((u) => u !== who.uid) || gids.some((g) => g !== who.gid) || capEff) {
    throw new PrivilegeError(
      `pid ${pid} would run as uid ${creds.euid}, gid ${creds.egid}${capEff ? ' with capabilities' : ''}; ` +
        `you (uid ${who.uid}) may only restore processes of your own, without capabilities`,
    );
  }
  if (!creds.groups.length) return;
  const mine = new Set(groupsOfUser(who.uid, who.gid));
  const foreign = creds.groups.filter((g) => !mine.has(g));
  if (foreign.length) {
    throw new PrivilegeError(
      `pid ${pid} would be in supplementary group${foreign.length > 1 ? 's' : ''} ${foreign.join(', ')}, ` +
        `which you (uid ${who.uid}) are not in; you may only restore processes with groups of your own`,
    );
  }
}

/** The supplementary groups of a user, as the system's user database says (id -G). */
export function groupsOfUser(uid: number, gid: number): number[] {
  // required here: node:child_process costs a start ~2.5 ms, and only a restore asks
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync('id', ['-G', '--', String(uid)], { encoding: 'utf8' });
  const listed = r.status === 0 ? r.stdout.trim().split(/\s+/).filter((g) => /^\d+$/.test(g)).map(Number) : [];
  return [...new Set([gid, ...listed])];
}

/** Drops the task to its dumped user and groups (last: afterwards it may not be able to do the rest). */
export function restoreCreds(remote: RemoteSyscall, creds: CredsEntry): void {
  const now = parseStatus(procRead(remote.pid, 'status'));
  const uidsNow = (now.get('Uid') ?? '').split(/\s+/).map(Number);
  const gidsNow = (now.get('Gid') ?? '').split(/\s+/).map(Number);
  const same = (a: number[], b: number[]) => a.every((v, i) => v === b[i]);
  remote.resetData();
  if (!same([creds.gid, creds.egid, creds.sgid, creds.fsgid], gidsNow) || (now.get('Groups') ?? '') !== creds.groups.join(' ')) {
    const groups = Buffer.alloc(Math.max(4, creds.groups.length * 4));
    creds.groups.forEach((g, i) => writeU32(groups, i * 4, g));
    remote.sys.setgroups(creds.groups.length, groups);
    remote.sys.setresgid(creds.gid, creds.egid, creds.sgid);
    remote.sysRaw.setfsgid(creds.fsgid);
  }
  const capsWanted = capsOf(creds);
  const capsNow = capsOf(capsFromStatus(now));
  const capsSame = capsWanted.every((v, i) => v === capsNow[i]);
  if (capsSame && same([creds.uid, creds.euid, creds.suid, creds.fsuid], uidsNow)) return;
  // Bounding set first, while we may; keep the permitted set across the uid change; then settle
  // the securebits with every capability still at hand, and lower the sets to what was dumped.
  const lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  for (let cap = 0; cap <= lastCap; cap++) {
    if (!bit(capsWanted[3], cap) && bit(capsNow[3], cap)) remote.sys.prctl(PR.CAPBSET_DROP, cap);
  }
  const secbitsNow = remote.sys.prctl(PR.GET_SECUREBITS);
  remote.sys.prctl(PR.SET_KEEPCAPS, 1);
  remote.sys.setresuid(creds.uid, creds.euid, creds.suid);
  remote.sysRaw.setfsuid(creds.fsuid);
  capset(remote, capsNow[1], capsNow[1], words(creds.capInh));
  // PR_SET_SECUREBITS needs CAP_SETPCAP, which an amber run with just CAP_CHECKPOINT_RESTORE and
  // CAP_SYS_PTRACE lacks: when only the keep-caps bit (set just above) differs, clear it alone.
  if ((secbitsNow & ~SECBIT_KEEP_CAPS) === (creds.secbits & ~SECBIT_KEEP_CAPS)) {
    remote.sys.prctl(PR.SET_KEEPCAPS, creds.secbits & SECBIT_KEEP_CAPS ? 1 : 0);
  } else {
    remote.sys.prctl(PR.SET_SECUREBITS, creds.secbits);
  }
  capset(remote, words(creds.capEff), words(creds.capPrm), words(creds.capInh));
  const amb = words(creds.amberCapAmb ?? []);
  remote.sys.with('PR_CAP_AMBIENT_CLEAR_ALL').prctl(PR.CAP_AMBIENT, 4, 0, 0, 0);
  for (let cap = 0; cap <= lastCap; cap++) if (bit(amb, cap)) remote.sys.with(`PR_CAP_AMBIENT_RAISE ${cap}`).prctl(PR.CAP_AMBIENT, 2, cap, 0, 0);
}

const words = (w: number[]) => BigInt(w[0] ?? 0) | (BigInt(w[1] ?? 0) << 32n);
const bit = (set: bigint, cap: number) => ((set >> BigInt(cap)) & 1n) === 1n;

/** inh, prm, eff, bnd, amb as 64-bit sets. */
function capsOf(c: CredsEntry): bigint[] {
  return [words(c.capInh), words(c.capPrm), words(c.capEff), words(c.capBnd), words(c.amberCapAmb ?? [])];
}

function capsFromStatus(st: Map<string, string>): CredsEntry {
  const caps = (k: string) => {
    const v = BigInt('0x' + (st.get(k) ?? '0'));
    return [Number(v & 0xffffffffn), Number(v >> 32n)];
  };
  return {
    uid: 0, euid: 0, suid: 0, fsuid: 0, gid: 0, egid: 0, sgid: 0, fsgid: 0, secbits: 0, groups: [],
    capInh: caps('CapInh'), capPrm: caps('CapPrm'), capEff: caps('CapEff'), capBnd: caps('CapBnd'), amberCapAmb: caps('CapAmb'),
  };
}

/** capset(2), version 3: two words each of effective, permitted, inheritable. */
function capset(remote: RemoteSyscall, e: bigint, p: bigint, i: bigint): void {
  const hdr = Buffer.alloc(8);
  writeU32(hdr, 0, 0x20080522);
  const data = Buffer.alloc(24);
  for (let w = 0; w < 2; w++) {
    const shift = BigInt(32 * w);
    writeU32(data, w * 12, Number((e >> shift) & 0xffffffffn));
    writeU32(data, w * 12 + 4, Number((p >> shift) & 0xffffffffn));
    writeU32(data, w * 12 + 8, Number((i >> shift) & 0xffffffffn));
  }
  remote.resetData();
  remote.sys.capset(hdr, data);
}

/** Pending signals, each a raw siginfo: re-queued by the task to itself, so any si_code is allowed. */
export function pendingSignalCalls(tid: number, tgid: number, signals: SignalQueueEntry | undefined, shared: boolean): TableCall[] {
  return (signals?.signals ?? []).map(({ siginfo }): TableCall => {
    const sig = readI32(siginfo, 0);
    return shared
      ? { name: 'rt_sigqueueinfo', args: [tgid, sig, siginfo], detail: `signal ${sig}` }
      : { name: 'rt_tgsigqueueinfo', args: [tgid, tid, sig, siginfo], detail: `signal ${sig}` };
  });
}

export function dumpNice(q: QueryBatch): () => number {
  const prio = q.add({ name: 'getpriority', args: [0 /* PRIO_PROCESS */, 0] });
  // the raw syscall returns 20 - nice, so that it is never negative
  return () => 20 - q.result(prio);
}

export function niceCall(nice: number): TableCall {
  return { name: 'setpriority', args: [0, 0, nice], detail: `nice ${nice}` };
}

/** Scheduling policy (with SCHED_RESET_ON_FORK) and static priority of the calling thread. */
export function dumpScheduler(q: QueryBatch): () => { schedPolicy: number; schedPrio: number } {
  const param = q.slot(4);
  const policy = q.add({ name: 'sched_getscheduler', args: [0] });
  q.add({ name: 'sched_getparam', args: [0, param] });
  return () => ({ schedPolicy: q.result(policy), schedPrio: q.bytes(param, 4).readInt32LE(0) });
}

export function schedulerCalls(policy: number, prio: number): TableCall[] {
  if (policy === 0 && prio === 0) return [];
  const param = Buffer.alloc(4);
  param.writeInt32LE(prio, 0);
  return [{ name: 'sched_setscheduler', args: [0, policy, param], detail: `policy ${policy}, priority ${prio}` }];
}

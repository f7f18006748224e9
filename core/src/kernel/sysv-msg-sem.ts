import { readFileSync, writeFileSync } from 'node:fs';
import { SYS } from './constants';
import { AmberError } from './errors';
import { addressOf, syscall, syscallRaw } from './libc';
import { namespaceOf, inNamespaceOf, namespaceFlag } from './namespaces';
import { IPC, parseSysvipcTable } from './sysv-shm';

// SysV message queues and semaphore sets, and the IPC namespace they live in, as amber's own
// process sees them. An IPC namespace is per thread in the kernel: amber's main thread visits a
// task's namespace (setns) to read or make its objects, /proc/sysvipc and the kernel.{msg,sem,shm}*
// sysctls included, and comes back.

export const SYSV_MSG = { NOERROR: 0o10000, COPY: 0o40000 } as const;
export const SEM = { UNDO: 0x1000, GETPID: 11, GETVAL: 12, GETALL: 13, SETALL: 17 } as const;
/** The kernel's ceiling for a semaphore value, and for an undo adjustment either way (SEMVMX, SEMAEM). */
export const SEMVMX = 32767;

/** struct ipc64_perm, as /proc/sysvipc and IPC_STAT show it. */
export interface IpcPerm {
  key: number;
  id: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** The permission bits (mode & 0777) */
  mode: number;
}

export interface MsgQueueState extends IpcPerm {
  cbytes: number;
  qnum: number;
  lspid: number;
  lrpid: number;
}

export interface SemSetState extends IpcPerm {
  nsems: number;
}

/** An IPC namespace's identity: the inode of its nsfs file. */
export const ipcnsOf = (pid: number | 'self'): bigint => namespaceOf('ipc', pid);

/** Runs fn with amber's main thread in pid's IPC namespace, and comes back whatever happens. */
export const inIpcnsOf = <T>(pid: number, fn: () => T): T => inNamespaceOf('ipc', pid, fn);

export const IPC_NEWNS_FLAG = namespaceFlag('ipc');

function sysvipcTable(kind: 'msg' | 'sem' | 'shm'): Record<string, number>[] {
  return parseSysvipcTable(readFileSync(`/proc/sysvipc/${kind}`, 'utf8')).map((row) => Object.fromEntries(Object.entries(row).map(([h, v]) => [h, Number(v)])));
}

function permOf(r: Record<string, number>, idCol: string): IpcPerm {
  return { key: r.key | 0, id: r[idCol], uid: r.uid, gid: r.gid, cuid: r.cuid, cgid: r.cgid, mode: parseInt(String(r.perms), 8) & 0o777 }; // perms: printed in octal digits
}

/** Message queues of amber's current IPC namespace (/proc/sysvipc/msg). */
export function listMsgQueues(): MsgQueueState[] {
  return sysvipcTable('msg').map((r) => ({ ...permOf(r, 'msqid'), cbytes: r.cbytes, qnum: r.qnum, lspid: r.lspid, lrpid: r.lrpid }));
}

/** Semaphore sets of amber's current IPC namespace (/proc/sysvipc/sem). */
export function listSemSets(): SemSetState[] {
  return sysvipcTable('sem').map((r) => ({ ...permOf(r, 'semid'), nsems: r.nsems }));
}

/** msg_qbytes of a queue (msqid64_ds: 48-byte ipc64_perm, three times, cbytes, qnum, qbytes). */
export function msgQueueBytesLimit(id: number): number {
  const ds = Buffer.alloc(120);
  syscall('msgctl(IPC_STAT)', SYS.msgctl, [id, IPC.STAT, addressOf(ds)], { detail: `msg queue id ${id}` });
  return Number(ds.readBigUInt64LE(88));
}

/**
 * Message `index` of a queue, without taking it off the queue (MSG_COPY). undefined past the last.
 * maxSize: the largest message the queue can hold.
 */
export function copyMessage(id: number, index: number, maxSize: number): { mtype: bigint; text: Buffer } | undefined {
  const buf = Buffer.alloc(8 + maxSize);
  const n = syscallRaw(SYS.msgrcv, [id, addressOf(buf), maxSize, index, IPC.NOWAIT | SYSV_MSG.COPY]);
  if (n === -ENOMSG) return undefined;
  if (n < 0) throw new IpcObjectError(`msgrcv(MSG_COPY) of message ${index} of msg queue id ${id} failed: errno ${-n}`);
  return { mtype: buf.readBigInt64LE(0), text: Buffer.from(buf.subarray(8, 8 + n)) };
}

/** Takes the first message off a queue (amber's own receive); false when it is empty. */
export function takeMessage(id: number): boolean {
  const buf = Buffer.alloc(8 + 65536);
  const n = syscallRaw(SYS.msgrcv, [id, addressOf(buf), 65536, 0, IPC.NOWAIT]);
  if (n === -ENOMSG) return false;
  if (n < 0) throw new IpcObjectError(`msgrcv of msg queue id ${id} failed: errno ${-n}`);
  return true;
}

const ENOMSG = 42;
const ENOSPC = 28;
const EEXIST = 17;

export class IpcObjectError extends AmberError {}

export interface NewIpcObject {
  kind: 'msg' | 'sem';
  key: number;
  id: number;
  mode: number;
  /** the creator, who the object is made as */
  cuid: number;
  cgid: number;
  nsems?: number;
}

/**
 * Makes a message queue or semaphore set with exactly the dumped id, as its creator (cuid/cgid
 * are whoever calls msgget/semget: amber's thread takes the creator's euid/egid for that call).
 * The id is asked for through /proc/sys/kernel/{msg,sem}_next_id (which the kernel then resets,
 * and which cannot be written -1 by hand); one taken is an error naming it.
 */
export function createWithId(o: NewIpcObject): number {
  writeFileSync(`/proc/sys/kernel/${o.kind}_next_id`, String(o.id));
  const flags = IPC.CREAT | IPC.EXCL | o.mode;
  const got = asCreator(o.cuid, o.cgid, () =>
    o.kind === 'msg' ? syscallRaw(SYS.msgget, [o.key >>> 0, flags]) : syscallRaw(SYS.semget, [o.key >>> 0, o.nsems ?? 1, flags]),
  );
  const what = o.kind === 'msg' ? 'msg queue' : 'sem set';
  if (got === -ENOSPC) throw new IpcObjectError(`${what} id ${o.id} is taken: another object of this IPC namespace has it`);
  if (got === -EEXIST) throw new IpcObjectError(`${what} key 0x${(o.key >>> 0).toString(16).padStart(8, '0')} (id ${o.id}) is taken by another ${what}`);
  if (got < 0) throw new IpcObjectError(`could not create ${what} id ${o.id}: errno ${-got}`);
  if (got !== o.id) {
    removeIpcObject(o.kind, got);
    throw new IpcObjectError(`${what} id ${o.id}: the kernel gave id ${got} instead`);
  }
  return got;
}

/** Runs fn with amber's thread's effective uid/gid set to the given ones (a per-thread raw syscall: glibc would change every thread). */
export function asCreator<T>(uid: number, gid: number, fn: () => T): T {
  if (uid === 0 && gid === 0) return fn();
  syscall('setresgid', SYS.setresgid, [-1, gid, -1]);
  try {
    syscall('setresuid', SYS.setresuid, [-1, uid, -1]);
    try {
      return fn();
    } finally {
      syscall('setresuid', SYS.setresuid, [-1, 0, -1]);
    }
  } finally {
    syscall('setresgid', SYS.setresgid, [-1, 0, -1]);
  }
}

/** IPC_SET: owner, group, permission bits (and, for a queue, its byte limit). */
export function setIpcPerm(kind: 'msg' | 'sem', id: number, perm: { uid: number; gid: number; mode: number }, qbytes?: number): void {
  const ds = Buffer.alloc(kind === 'msg' ? 120 : 104);
  if (kind === 'msg') syscall('msgctl(IPC_STAT)', SYS.msgctl, [id, IPC.STAT, addressOf(ds)], { detail: `msg queue id ${id}` });
  else syscall('semctl(IPC_STAT)', SYS.semctl, [id, 0, IPC.STAT, addressOf(ds)], { detail: `sem set id ${id}` });
  ds.writeUInt32LE(perm.uid, 4);
  ds.writeUInt32LE(perm.gid, 8);
  ds.writeUInt32LE(perm.mode, 20);
  if (qbytes !== undefined) ds.writeBigUInt64LE(BigInt(qbytes), 88);
  if (kind === 'msg') syscall('msgctl(IPC_SET)', SYS.msgctl, [id, IPC.SET, addressOf(ds)], { detail: `msg queue id ${id}` });
  else syscall('semctl(IPC_SET)', SYS.semctl, [id, 0, IPC.SET, addressOf(ds)], { detail: `sem set id ${id}` });
}

export function removeIpcObject(kind: 'msg' | 'sem', id: number): void {
  if (kind === 'msg') syscallRaw(SYS.msgctl, [id, IPC.RMID, 0]);
  else syscallRaw(SYS.semctl, [id, 0, IPC.RMID, 0]);
}

export function sendMessage(id: number, mtype: bigint, text: Buffer): void {
  const buf = Buffer.alloc(8 + text.length);
  buf.writeBigInt64LE(mtype, 0);
  text.copy(buf, 8);
  syscall('msgsnd', SYS.msgsnd, [id, addressOf(buf), text.length, IPC.NOWAIT], { detail: `msg queue id ${id}` });
}

export function semValues(id: number, nsems: number): number[] {
  const vals = Buffer.alloc(2 * Math.max(nsems, 1));
  syscall('semctl(GETALL)', SYS.semctl, [id, 0, SEM.GETALL, addressOf(vals)], { detail: `sem set id ${id}` });
  return Array.from({ length: nsems }, (_, i) => vals.readUInt16LE(2 * i));
}

export function setSemValues(id: number, values: number[]): void {
  const vals = Buffer.alloc(2 * Math.max(values.length, 1));
  values.forEach((v, i) => vals.writeUInt16LE(v, 2 * i));
  syscall('semctl(SETALL)', SYS.semctl, [id, 0, SEM.SETALL, addressOf(vals)], { detail: `sem set id ${id}` });
}

/** The pid of the last task that operated on semaphore n (GETPID). */
export function semLastPid(id: number, n: number): number {
  return syscall('semctl(GETPID)', SYS.semctl, [id, n, SEM.GETPID, 0], { detail: `sem set id ${id}` });
}

/** The kernel.{msg,sem,shm}* and fs.mqueue.* sysctls of amber's current IPC namespace, by name. */
export const IPC_SYSCTLS = [
  'kernel/sem', 'kernel/msgmax', 'kernel/msgmnb', 'kernel/msgmni', 'kernel/auto_msgmni', 'kernel/shmmax', 'kernel/shmall',
  'kernel/shmmni', 'kernel/shm_rmid_forced', 'fs/mqueue/queues_max', 'fs/mqueue/msg_max', 'fs/mqueue/msgsize_max',
  'fs/mqueue/msg_default', 'fs/mqueue/msgsize_default', 'kernel/msg_next_id', 'kernel/sem_next_id', 'kernel/shm_next_id',
] as const;
export type IpcSysctl = (typeof IPC_SYSCTLS)[number];

/** A sysctl's numbers, or undefined when this kernel lacks it. */
export function readIpcSysctl(name: IpcSysctl): bigint[] | undefined {
  try {
    return readFileSync(`/proc/sys/${name}`, 'utf8').trim().split(/\s+/).map((v) => BigInt(v));
  } catch {
    return undefined;
  }
}

export function writeIpcSysctl(name: IpcSysctl, values: readonly bigint[]): void {
  writeFileSync(`/proc/sys/${name}`, values.join(' '));
}

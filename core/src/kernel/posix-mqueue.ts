import { closeSync, openSync, readSync, constants as fsConstants } from 'node:fs';
import { SYS } from './constants';
import { KernelError } from './errors';
import { addressOf, syscall, syscallRaw } from './libc';

// POSIX message queues as amber's own process reaches them: through an fd of its own on the
// queue's inode. The kernel has no way to look at a message without taking it off the queue.

const MQUEUE_MAGIC = 0x19800202n;
const STATFS_SIZE = 120;
const ETIMEDOUT = 110;
/** A time already past: a receive or send on it never waits. */
const PAST = Buffer.alloc(16);

/** struct mq_attr */
export interface MqAttr {
  flags: bigint;
  maxmsg: bigint;
  msgsize: bigint;
  curmsgs: bigint;
}

/** What the kernel shows of a queue's notification (reading the queue's file, or /dev/mqueue/NAME). */
export interface MqStatus {
  bytes: number;
  /** SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD 2 */
  notify: number;
  signo: number;
  /** 0: no notification registered */
  notifyPid: number;
}

/** Whether a path (a /proc/PID/fd/N link) is on an mqueue filesystem. */
export function isOnMqueueFs(path: string): boolean {
  const buf = Buffer.alloc(STATFS_SIZE);
  const p = Buffer.from(path + '\0');
  if (syscallRaw(SYS.statfs, [addressOf(p), addressOf(buf)]) < 0) return false;
  return buf.readBigInt64LE(0) === MQUEUE_MAGIC;
}

/** An fd of amber's own on the queue a task holds at fd (a new open of its inode). */
export function openMqueueOf(pid: number, fd: number, flags = fsConstants.O_RDWR): number {
  return openSync(`/proc/${pid}/fd/${fd}`, flags | 0o2000000 /* O_CLOEXEC */);
}

export function mqGetAttr(mqd: number): MqAttr {
  const attr = Buffer.alloc(64);
  syscall('mq_getsetattr', SYS.mq_getsetattr, [mqd, 0, addressOf(attr)]);
  return { flags: attr.readBigInt64LE(0), maxmsg: attr.readBigInt64LE(8), msgsize: attr.readBigInt64LE(16), curmsgs: attr.readBigInt64LE(24) };
}

export function mqAttrBuffer(maxmsg: bigint, msgsize: bigint): Buffer {
  const attr = Buffer.alloc(64);
  attr.writeBigInt64LE(maxmsg, 8);
  attr.writeBigInt64LE(msgsize, 16);
  return attr;
}

export function mqStatus(mqd: number): MqStatus {
  const buf = Buffer.alloc(256);
  const n = readSync(mqd, buf, 0, buf.length, 0);
  const text = buf.subarray(0, n).toString();
  const field = (k: string) => Number(new RegExp(`${k}:\\s*(-?\\d+)`).exec(text)?.[1] ?? 0);
  return { bytes: field('QSIZE'), notify: field('NOTIFY'), signo: field('SIGNO'), notifyPid: field('NOTIFY_PID') };
}

/** Takes the first message off the queue (highest priority, oldest); undefined when empty. */
export function mqReceive(mqd: number, msgsize: number): { priority: number; data: Buffer } | undefined {
  const buf = Buffer.alloc(Math.max(msgsize, 1));
  const prio = Buffer.alloc(4);
  const n = syscallRaw(SYS.mq_timedreceive, [mqd, addressOf(buf), buf.length, addressOf(prio), addressOf(PAST)]);
  if (n === -ETIMEDOUT) return undefined;
  if (n < 0) throw new KernelError('mq_timedreceive', -n);
  return { priority: prio.readUInt32LE(0), data: Buffer.from(buf.subarray(0, n)) };
}

export function mqSend(mqd: number, data: Buffer, priority: number): void {
  const buf = data.length ? data : Buffer.alloc(1);
  syscall('mq_timedsend', SYS.mq_timedsend, [mqd, addressOf(buf), data.length, priority, addressOf(PAST)]);
}

export function closeMqueue(mqd: number): void {
  closeSync(mqd);
}

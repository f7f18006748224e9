import {
  AmberError, copyMessage, createWithId, IPC, takeMessage, listMsgQueues, msgQueueBytesLimit, removeIpcObject, sendMessage, setIpcPerm, sha256,
  type CompareContext, type Difference, type DumpContext, type MsgQueueState, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { msgImageName, type IpcMsgEntry } from './objs-images';
import { describeDesc, descOf, diffDesc, type IpcCreated } from './objs-common';
import type { TreeIpcNamespace } from './namespace';

export class MsgQueueError extends AmberError {}

/** One message of a queue as CRIU frames it after the queue's entry: [u32 len][IpcMsg], then its bytes padded to 8. */
export function frameMessage(mtype: bigint, text: Buffer): Buffer {
  const head = Buffer.concat([Buffer.from([0x08]), varint(mtype), Buffer.from([0x10]), varint(BigInt(text.length))]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(head.length);
  const pad = Buffer.alloc((8 - (text.length % 8)) % 8);
  return Buffer.concat([len, head, text, pad]);
}

function varint(v: bigint): Buffer {
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? b | 0x80 : b);
  } while (v);
  return Buffer.from(out);
}

function readVarint(b: Buffer, at: number): { v: bigint; next: number } {
  let v = 0n;
  for (let shift = 0n; ; shift += 7n) {
    const byte = b[at++];
    v |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return { v, next: at };
  }
}

/** The messages after a queue's entry, as frameMessage wrote them. */
export function unframeMessages(blob: Buffer, count: number): { mtype: bigint; text: Buffer }[] {
  const out: { mtype: bigint; text: Buffer }[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const len = blob.readUInt32LE(at);
    const head = blob.subarray(at + 4, at + 4 + len);
    let mtype = 0n;
    let size = 0;
    for (let p = 0; p < head.length; ) {
      const tag = head[p];
      const { v, next } = readVarint(head, p + 1);
      if (tag === 0x08) mtype = v;
      else if (tag === 0x10) size = Number(v);
      p = next;
    }
    at += 4 + len;
    out.push({ mtype, text: Buffer.from(blob.subarray(at, at + size)) });
    at += size + ((8 - (size % 8)) % 8);
  }
  return out;
}

/**
 * The queues that belong to the tree: in its own namespace, all of them; in the host's, those
 * whose last sender or last receiver (msg_lspid, msg_lrpid) is a task of the tree.
 */
export function treeQueues(ns: TreeIpcNamespace, pids: ReadonlySet<number>): MsgQueueState[] {
  return listMsgQueues().filter((q) => !ns.host || pids.has(q.lspid) || pids.has(q.lrpid));
}

/** Every message of each queue, read with MSG_COPY: the queues are left exactly as they were. */
export function dumpMsgQueues(ctx: DumpContext, ns: TreeIpcNamespace): IpcMsgEntry[] {
  const pids = new Set(ctx.tasks.map((t) => t.pid));
  const entries: IpcMsgEntry[] = [];
  const blobs: Buffer[] = [];
  for (const q of treeQueues(ns, pids)) {
    const qbytes = msgQueueBytesLimit(q.id);
    const frames: Buffer[] = [];
    // no message is larger than every byte the queue holds
    for (let i = 0; i < q.qnum; i++) {
      const m = copyMessage(q.id, i, Math.max(q.cbytes, 1));
      if (!m) throw new MsgQueueError(`msg queue id ${q.id} held ${q.qnum} messages but message ${i} is gone: something outside the tree took it during the dump`);
      frames.push(frameMessage(m.mtype, m.text));
    }
    const blob = Buffer.concat(frames);
    entries.push({ desc: descOf(q), qbytes, qnum: q.qnum, amberMessagesBytes: blob.length, amberLspid: q.lspid, amberLrpid: q.lrpid });
    blobs.push(blob);
    ctx.count('msg queues', 1);
    ctx.count('msg messages', q.qnum);
  }
  if (entries.length) ctx.store.write('ipcns-msg', msgImageName(ns.id), entries, { blobs });
  return entries;
}

/** Refuses, before anything is made, a dumped id or key another queue has now. */
export function checkMsgIdsFree(ctx: RestoreContext, nsId: number): void {
  if (!ctx.store.has(msgImageName(nsId))) return;
  const live = listMsgQueues();
  for (const e of ctx.store.read<IpcMsgEntry>('ipcns-msg', msgImageName(nsId)).entries) {
    const taken = live.find((q) => q.id === e.desc.id || (e.desc.key !== 0 && q.key >>> 0 === e.desc.key));
    if (taken) {
      throw new MsgQueueError(
        `msg queue ${describeDesc(e.desc)} cannot be restored: ${taken.id === e.desc.id ? 'its id' : 'its key'} is taken by msg queue id ${taken.id} ` +
          `(key 0x${(taken.key >>> 0).toString(16)}, ${taken.qnum} messages): remove it (ipcrm -q ${taken.id}) or restore elsewhere`,
      );
    }
  }
}

/**
 * Makes every queue again with its id, key, owners, mode and limit, and sends its messages back in
 * order. Its last sender and receiver, when in the tree, are made so again (the host's
 * namespace tells the tree's queues by them): a message of no consequence is sent by the one and
 * taken by the other first, and the last message is sent by the last sender.
 */
export function restoreMsgQueues(ctx: RestoreContext, nsId: number, created: IpcCreated[]): void {
  if (!ctx.store.has(msgImageName(nsId))) return;
  const image = ctx.store.read<IpcMsgEntry>('ipcns-msg', msgImageName(nsId));
  const inTree = (pid: number | undefined) => ctx.tasks.find((t) => t.pid === pid);
  image.entries.forEach((e, i) => {
    const { desc } = e;
    createWithId({ kind: 'msg', key: desc.key, id: desc.id, mode: desc.mode & 0o777, cuid: desc.cuid, cgid: desc.cgid });
    created.push({ kind: 'msg', id: desc.id });
    setIpcPerm('msg', desc.id, desc, e.qbytes);
    const [sender, receiver] = [inTree(e.amberLspid), inTree(e.amberLrpid)];
    if (sender || receiver) {
      if (sender) injectSend(sender, desc.id, 1n, Buffer.alloc(0));
      else sendMessage(desc.id, 1n, Buffer.alloc(0));
      if (receiver) injectReceive(receiver, desc.id);
      else if (!takeMessage(desc.id)) throw new MsgQueueError(`msg queue id ${desc.id}: the placeholder message is gone`);
    }
    const messages = unframeMessages(image.blobs[i] ?? Buffer.alloc(0), e.qnum);
    messages.forEach((m, k) => {
      if (sender && k === messages.length - 1 && m.text.length + 64 < sender.remote.dataRoom) injectSend(sender, desc.id, m.mtype, m.text);
      else sendMessage(desc.id, m.mtype, m.text);
    });
  });
}

function injectSend(task: RestoreTask, id: number, mtype: bigint, text: Buffer): void {
  const buf = Buffer.alloc(8 + text.length);
  buf.writeBigInt64LE(mtype, 0);
  text.copy(buf, 8);
  task.remote.resetData();
  task.remote.sys.with(`msg queue id ${id}`).msgsnd(id, buf, text.length, IPC.NOWAIT);
  task.remote.resetData();
}

function injectReceive(task: RestoreTask, id: number): void {
  task.remote.resetData();
  const at = task.remote.reserve(16);
  task.remote.sys.with(`msg queue id ${id}`).msgrcv(id, at, 8, 0, IPC.NOWAIT);
  task.remote.resetData();
}

export function compareMsgQueues(ctx: CompareContext, nsId: number): Difference[] {
  if (!ctx.store.has(msgImageName(nsId))) return [];
  const image = ctx.store.read<IpcMsgEntry>('ipcns-msg', msgImageName(nsId));
  const live = new Map(listMsgQueues().map((q) => [q.id, q]));
  const out: Difference[] = [];
  const pid = ctx.pids[0];
  image.entries.forEach((e, i) => {
    const what = `msg queue ${describeDesc(e.desc)}`;
    const q = live.get(e.desc.id);
    if (!q) return void out.push({ plugin: 'ipc', pid, what, expected: 'present', actual: 'missing' });
    const diff = (field: string, expected: string, actual: string) => void (expected !== actual && out.push({ plugin: 'ipc', pid, what: `${what}: ${field}`, expected, actual }));
    diffDesc(e.desc, q, diff);
    diff('byte limit', String(e.qbytes), String(msgQueueBytesLimit(q.id)));
    diff('message count', String(e.qnum), String(q.qnum));
    const dumped = unframeMessages(image.blobs[i] ?? Buffer.alloc(0), e.qnum);
    const now = Array.from({ length: q.qnum }, (_, k) => copyMessage(q.id, k, Math.max(q.cbytes, 1)));
    diff('messages', dumped.map(show).join(' '), now.map((m) => (m ? show(m) : '?')).join(' '));
  });
  return out;
}

/** A message in a few words: its type, size and a digest of its bytes. */
const show = (m: { mtype: bigint; text: Buffer }) => `${m.mtype}:${m.text.length}:${sha256(m.text).toString('hex', 0, 4)}`;

export function removeQueue(id: number): void {
  removeIpcObject('msg', id);
}

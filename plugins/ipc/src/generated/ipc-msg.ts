// Generated from plugins/ipc/proto/ipc-msg.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { IpcDescEntry } from './ipc-desc';

export interface IpcMsg {
  mtype: bigint;
  msize: number;
}

export interface IpcMsgEntry {
  desc: IpcDescEntry;
  /** msg_qbytes: the most bytes the queue holds */
  qbytes: number;
  /** messages that follow */
  qnum: number;
  /** amber: length of what follows the entry (the messages, framed), so a reader can skip it */
  amberMessagesBytes?: number;
  /** amber: msg_lspid and msg_lrpid, the last sender and receiver (made so again at restore when they are in the tree) */
  amberLspid?: number;
  amberLrpid?: number;
}

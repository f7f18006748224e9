import * as path from 'node:path';
import { registerImageType } from '@amber/core';
import type { IpcMsgEntry, IpcSemEntry } from './generated';

export type { IpcMsgEntry, IpcSemEntry, IpcVarEntry, MqueueFileEntry, MqueueMessage, SemUndoEntry } from './generated';

const PROTO_DIR = path.resolve(__dirname, '..', 'proto');
export const MQUEUE_PROTO = path.join(PROTO_DIR, 'ipc-mqueue.proto');

/** ipcns-msg-<ns>: CRIU's magic and message; the queue's messages follow its entry. */
registerImageType<IpcMsgEntry>({
  type: 'ipcns-msg', magic: 0x55453737, protoFile: path.join(PROTO_DIR, 'ipc-msg.proto'), message: 'amberipc.IpcMsgEntry',
  blobLength: (e) => e.amberMessagesBytes ?? 0,
});
/** ipcns-sem-<ns>: CRIU's; each set's values (u16) follow its entry, padded to 8 bytes. */
registerImageType<IpcSemEntry>({
  type: 'ipcns-sem', magic: 0x59573019, protoFile: path.join(PROTO_DIR, 'ipc-sem.proto'), message: 'amberipc.IpcSemEntry',
  blobLength: (e) => 2 * e.nsems, blobAlign: 8,
});
/** ipcns-var-<ns>: CRIU's (IPC_VAR_MAGIC). */
registerImageType({ type: 'ipcns-var', magic: 0x53115007, protoFile: path.join(PROTO_DIR, 'ipc-var.proto'), message: 'amberipc.IpcVarEntry' });

export const msgImageName = (nsId: number) => `ipcns-msg-${nsId}`;
export const semImageName = (nsId: number) => `ipcns-sem-${nsId}`;
export const varImageName = (nsId: number) => `ipcns-var-${nsId}`;

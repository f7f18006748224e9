import * as path from 'node:path';
import { registerImageType } from '@amber/core';
import type { IpcShmEntry } from './generated';

export type { IpcDescEntry, IpcShmEntry } from './generated';

const PROTO_DIR = path.resolve(__dirname, '..', 'proto');

/**
 * ipcns-shm-<ns id>: CRIU's magic and message; a segment's contents follow its entry (padded to 4
 * bytes), or, with in_pagemaps, are in pagemap-shmem-<shmid> and a pages file.
 */
registerImageType<IpcShmEntry>({
  type: 'ipcns-shm', magic: 0x46283044, protoFile: path.join(PROTO_DIR, 'ipc-shm.proto'), message: 'amberipc.IpcShmEntry',
  blobLength: (e) => (e.inPagemaps ? 0 : Number(e.size)), blobAlign: 4,
});

export const shmImageName = (nsId: number) => `ipcns-shm-${nsId}`;
export const shmPagemapName = (pagemapId: number) => `pagemap-shmem-${pagemapId}`;

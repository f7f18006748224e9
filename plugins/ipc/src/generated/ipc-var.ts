// Generated from plugins/ipc/proto/ipc-var.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface IpcVarEntry {
  /** kernel.sem: semmsl, semmns, semopm, semmni */
  semCtls: number[];
  msgCtlmax: number;
  msgCtlmnb: number;
  msgCtlmni: number;
  autoMsgmni: number;
  shmCtlmax: bigint;
  shmCtlall: bigint;
  shmCtlmni: number;
  shmRmidForced: number;
  mqQueuesMax: number;
  mqMsgMax: number;
  mqMsgsizeMax: number;
  mqMsgDefault?: number;
  mqMsgsizeDefault?: number;
  msgNextId?: number;
  semNextId?: number;
  shmNextId?: number;
}

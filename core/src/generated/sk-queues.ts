// Generated from core/proto/sk-queues.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface ScmEntry {
  type: number;
  /** files.img ids of the files passed (SCM_RIGHTS) */
  rights: number[];
}

export interface SkUcredEntry {
  pid: number;
  uid: number;
  gid: number;
}

/** One record queued to the socket id_for, followed in the image by its `length` bytes. */
export interface SkPacketEntry {
  idFor: number;
  length: number;
  /** the sender's address (datagrams): a sockaddr as recvmsg gave it */
  addr?: Buffer;
  scm: ScmEntry[];
  /** amber: credentials attached (the receiver had SO_PASSCRED) */
  ucred?: SkUcredEntry;
}

// Generated from plugins/ipc/proto/ipc-mqueue.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface MqueueFileEntry {
  id: number;
  /** the queue's name in its mqueue filesystem ("/name") */
  name: string;
  /** open flags of the description (O_RDONLY/O_WRONLY/O_RDWR, O_NONBLOCK) */
  flags: number;
  /** owner and permission bits of the queue's inode */
  uid: number;
  gid: number;
  mode: number;
  maxmsg: bigint;
  msgsize: bigint;
  /** the queue had been mq_unlink'ed: it is made, opened and unlinked again */
  unlinked?: boolean;
  /** inode number, to tell which descriptions open one queue */
  ino: bigint;
  /** messages and their bytes at the dump */
  curmsgs?: number;
  bytes?: number;
  /** the queue's messages, in the order mq_receive gives them: with the first description of each queue */
  messages: MqueueMessage[];
  /**
   * a SIGEV_NONE notification registered by this process (the only kind whose every field the
   * kernel shows), with the first description of the queue
   */
  notifyPid?: number;
}

export interface MqueueMessage {
  priority: number;
  data: Buffer;
}

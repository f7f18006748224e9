import * as path from 'node:path';
import { registerImageType } from '@amber/core';
import type { TcpStreamEntry } from './generated';

/** The messages of the inet kind's member of files.img (FileKind.member). */
export const SK_INET_PROTO = path.resolve(__dirname, '..', 'proto', 'sk-inet.proto');
const TCP_STREAM_PROTO = path.resolve(__dirname, '..', 'proto', 'tcp-stream.proto');

/** tcp-stream-<inode hex>.img: the entry, then the receive queue's bytes, then the send queue's (CRIU's magic and layout). */
export function registerNetImages(): void {
  registerImageType<TcpStreamEntry>({
    type: 'tcp-stream', magic: 0x51465506, protoFile: TCP_STREAM_PROTO, message: 'ambernet.TcpStreamEntry',
    blobLength: (e) => e.inqLen + e.outqLen,
  });
}

export const tcpStreamImage = (ino: number): string => `tcp-stream-${ino.toString(16)}`;

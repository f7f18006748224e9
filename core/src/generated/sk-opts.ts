// Generated from core/proto/sk-opts.proto by `npm run protos` (scripts/protos.js): do not edit.

/**
 * Socket options every socket has, as getsockopt reports them (the kernel doubles the buffer
 * sizes setsockopt asked for).
 */
export interface SkOptsEntry {
  soSndbuf: number;
  soRcvbuf: number;
  soSndTmoSec: bigint;
  soSndTmoUsec: bigint;
  soRcvTmoSec: bigint;
  soRcvTmoUsec: bigint;
  reuseaddr?: boolean;
  soPriority?: number;
  soRcvlowat?: number;
  soMark?: number;
  soPasscred?: boolean;
  soPasssec?: boolean;
  soDontroute?: boolean;
  soNoCheck?: boolean;
  soBoundDev?: string;
  soFilter: bigint[];
  soReuseport?: boolean;
  soBroadcast?: boolean;
  soKeepalive?: boolean;
  tcpKeepcnt?: number;
  tcpKeepidle?: number;
  tcpKeepintvl?: number;
  soOobinline?: number;
  /** seconds of SO_LINGER when it is on; absent when off */
  soLinger?: number;
  soBufLock?: number;
}

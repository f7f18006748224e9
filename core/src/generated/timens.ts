// Generated from core/proto/timens.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface TimensOffset {
  tvSec: bigint;
  tvNsec: bigint;
}

export interface TimensEntry {
  /** CLOCK_MONOTONIC and CLOCK_BOOTTIME as the tasks read them at the dump */
  monotonic: TimensOffset;
  boottime: TimensOffset;
}

// Generated from core/proto/seccomp.proto by `npm run protos` (scripts/protos.js): do not edit.

/**
 * A BPF program installed with seccomp(SECCOMP_SET_MODE_FILTER). Filters stack: `prev` is the
 * index, plus one, of the filter installed before this one in the same chain (0: the first).
 */
export interface SeccompFilter {
  filter: Buffer;
  prev?: number;
  flags?: number;
}

export interface SeccompEntry {
  seccompFilters: SeccompFilter[];
}

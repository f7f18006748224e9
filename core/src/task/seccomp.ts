import { PR, PTRACE } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { ptrace, ptraceBuf } from '../kernel/syscalls';
import type { SeccompEntry, SeccompFilter, ThreadCoreEntry } from '../images';
import type { RemoteSyscall } from '../ptrace/remote-syscall';

const SECCOMP_MODE_STRICT = 1;
const SECCOMP_MODE_FILTER = 2;
const SECCOMP_SET_MODE_FILTER = 1;
const SOCK_FILTER_SIZE = 8;

/**
 * Seccomp state of a dump: every thread's filter chain, oldest first, in one seccomp.img. Tasks
 * are seized with PTRACE_O_SUSPEND_SECCOMP, so a filter never gets in the way of amber's own
 * injected syscalls, at dump or restore.
 */
export class SeccompTable {
  readonly filters: SeccompFilter[] = [];

  /** Mode, top filter and no_new_privs of one thread, for its thread_core. */
  dumpThread(pid: number, tid: number, st: Map<string, string>): Pick<ThreadCoreEntry, 'seccompMode' | 'seccompFilter' | 'amberNoNewPrivs'> {
    const mode = Number(st.get('Seccomp') ?? 0);
    const out: Pick<ThreadCoreEntry, 'seccompMode' | 'seccompFilter' | 'amberNoNewPrivs'> = {
      seccompMode: mode,
      amberNoNewPrivs: st.get('NoNewPrivs') === '1',
    };
    if (mode !== SECCOMP_MODE_FILTER) return out;
    const newestFirst: SeccompFilter[] = [];
    for (let index = 0; ; index++) {
      let count: number;
      try {
        count = ptrace(PTRACE.SECCOMP_GET_FILTER, tid, index, 0, 'PTRACE_SECCOMP_GET_FILTER');
      } catch (e) {
        if (e instanceof KernelError && e.errnoName === 'ENOENT') break;
        throw e;
      }
      const filter = Buffer.alloc(count * SOCK_FILTER_SIZE);
      ptraceBuf(PTRACE.SECCOMP_GET_FILTER, tid, index, filter, 'PTRACE_SECCOMP_GET_FILTER');
      const meta = Buffer.alloc(16);
      meta.writeBigUInt64LE(BigInt(index), 0);
      ptraceBuf(PTRACE.SECCOMP_GET_METADATA, tid, 16, meta, 'PTRACE_SECCOMP_GET_METADATA');
      newestFirst.push({ filter, flags: Number(meta.readBigUInt64LE(8)) });
    }
    let prev = 0;
    for (const f of newestFirst.reverse()) {
      this.filters.push({ ...f, prev });
      prev = this.filters.length;
    }
    out.seccompFilter = prev - 1;
    return out;
  }

  entry(): SeccompEntry {
    return { seccompFilters: this.filters };
  }
}

/**
 * Installs a thread's seccomp state (before its credentials drop: installing a filter without
 * no_new_privs needs CAP_SYS_ADMIN). The filters only bite once amber lets the thread go.
 */
export function restoreSeccomp(remote: RemoteSyscall, tc: ThreadCoreEntry, table: SeccompEntry | undefined): void {
  if (tc.amberNoNewPrivs) remote.sys.prctl(PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (tc.seccompMode === SECCOMP_MODE_STRICT) {
    remote.sys.prctl(PR.SET_SECCOMP, SECCOMP_MODE_STRICT);
    return;
  }
  if (tc.seccompMode !== SECCOMP_MODE_FILTER || tc.seccompFilter === undefined || !table) return;
  const chain: SeccompFilter[] = [];
  for (let i = tc.seccompFilter; i >= 0; i = (table.seccompFilters[i].prev ?? 0) - 1) chain.unshift(table.seccompFilters[i]);
  for (const f of chain) {
    remote.resetData();
    const prog = Buffer.alloc(16);
    prog.writeUInt16LE(f.filter.length / SOCK_FILTER_SIZE, 0);
    prog.writeBigUInt64LE(remote.stage(f.filter), 8);
    remote.sys.seccomp(SECCOMP_SET_MODE_FILTER, f.flags ?? 0, prog);
  }
}

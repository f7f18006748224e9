import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { release } from 'node:os';
import { KCMP, SYS } from '../kernel/constants';
import { addressOf, syscallRaw } from '../kernel/libc';
import { probeIoUringDetection } from '../task/io-uring';
import { procRead, parseStatus } from '../task/proc';
import type { FeatureCheck, ResourcePlugin } from './plugin';

export interface Feature extends FeatureCheck {
  /** The plugin that asked for it; none for the core's own. */
  plugin?: string;
}

const CAP = { SYS_PTRACE: 19, SYS_ADMIN: 21, SYS_RESOURCE: 24, CHECKPOINT_RESTORE: 40 } as const;

/**
 * Probes the kernel features amber uses, by trying them on amber's own process: the core's, then
 * each plugin's (ResourcePlugin.checks). A plugin whose probe throws has that feature missing.
 */
export function checkFeatures(plugins: readonly ResourcePlugin[] = []): Feature[] {
  return [...coreFeatures(), ...plugins.flatMap(pluginFeatures)];
}

function pluginFeatures(p: ResourcePlugin): Feature[] {
  if (!p.checks) return [];
  try {
    return p.checks().map((f) => ({ ...f, plugin: p.name }));
  } catch (e) {
    return [{ name: `${p.name}'s checks`, present: false, required: true, why: 'the plugin could not probe the kernel', detail: (e as Error).message, plugin: p.name }];
  }
}

function coreFeatures(): Feature[] {
  const [major, minor] = release().split('.').map(Number);
  const caps = BigInt('0x' + (parseStatus(procRead('self', 'status')).get('CapEff') ?? '0'));
  const hasCap = (c: number) => (caps & (1n << BigInt(c))) !== 0n;
  const probe = (nr: number, args: (number | bigint)[]) => syscallRaw(nr, args);
  const out: Feature[] = [
    { name: 'Linux >= 5.10 on x86-64', present: process.arch === 'x64' && (major > 5 || (major === 5 && minor >= 10)), required: true, why: 'clone3 set_tid, pidfd_getfd, close_range, PTRACE_GET_RSEQ_CONFIGURATION', detail: `${release()} ${process.arch}` },
    { name: 'CAP_SYS_PTRACE', present: hasCap(CAP.SYS_PTRACE), required: true, why: 'seizing and injecting syscalls into tasks of other users' },
    { name: 'CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN)', present: hasCap(CAP.CHECKPOINT_RESTORE) || hasCap(CAP.SYS_ADMIN), required: true, why: 'clone3 with set_tid (same pids), PR_SET_MM_MAP, reading PFNs in pagemap' },
    { name: 'CAP_SYS_RESOURCE', present: hasCap(CAP.SYS_RESOURCE), required: false, why: 'raising a restored hard resource limit above amber\'s own (else it is lowered to it, with a warning); mm fields go through PR_SET_MM_MAP, which does not need it' },
    { name: 'kcmp', present: probe(SYS.kcmp, [process.pid, process.pid, KCMP.VM, 0, 0]) === 0, required: true, why: 'telling shared kernel objects apart (CONFIG_KCMP)' },
    { name: 'pidfd_open / pidfd_getfd', present: pidfdWorks(), required: true, why: 'one open file shared by several restored processes; reading pipe contents without consuming them' },
    { name: 'PTRACE_GET_RSEQ_CONFIGURATION', present: major > 5 || (major === 5 && minor >= 13), required: false, why: 'restoring glibc\'s rseq registration (Linux 5.13)' },
    { name: 'PR_GET_TID_ADDRESS', present: existsSync('/proc/self/map_files'), required: true, why: 'CONFIG_CHECKPOINT_RESTORE: tid address, map_files, set_tid' },
    { name: '/proc/PID/pagemap with PFNs', present: pagemapHasPfn(), required: false, why: 'skipping zero pages in dumps' },
    { name: 'PR_TIMER_CREATE_RESTORE_IDS (Linux 6.15)', present: major > 6 || (major === 6 && minor >= 15), required: false, why: 'POSIX timers keep their ids when the dumped ids have holes' },
    { name: 'io_uring detection', required: false, why: 'refusing a process that uses io_uring before anything is seized (its kernel workers never stop for ptrace)', ...probeIoUringDetection() },
  ];
  return out;
}

function pidfdWorks(): boolean {
  const fd = syscallRaw(SYS.pidfd_open, [process.pid, 0]);
  if (fd < 0) return false;
  const got = syscallRaw(SYS.pidfd_getfd, [fd, 0, 0]);
  if (got >= 0) closeSync(got);
  closeSync(fd);
  return got >= 0;
}

/** Root reads page frame numbers in pagemap; without them zero pages cannot be told apart. */
function pagemapHasPfn(): boolean {
  try {
    const probe = Buffer.alloc(4096, 1);
    const addr = addressOf(probe);
    const fd = openSync('/proc/self/pagemap', 'r');
    const entry = Buffer.alloc(8);
    readSync(fd, entry, 0, 8, Number(addr / 4096n) * 8);
    closeSync(fd);
    return (entry.readBigUInt64LE(0) & ((1n << 55n) - 1n)) !== 0n;
  } catch {
    return false;
  }
}

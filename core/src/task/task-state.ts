import { readFileSync } from 'node:fs';
import { ERESTART, KSIGACTION_SIZE, PR, SIG } from '../kernel/constants';
import { Registers, REG_NAMES } from '../kernel/regs';
import { getRobustList } from '../kernel/syscalls';
import { ImageError } from '../images';
import { fpregsFromXsave, TaskState, type CoreEntry, type CredsEntry, type SaEntry, type SeccompEntry, type TaskRlimitsEntry, type TaskTimersEntry, type ThreadSasEntry, type UserX86RegsEntry } from '../images';
import {
  altStackCalls, dumpAltStack, dumpChildSubreaper, dumpCreds, dumpItimers, dumpNice, dumpScheduler, dumpPdeathsig, dumpRlimits, itimerCalls,
  niceCall, pendingSignalCalls, restoreCreds, rlimitCalls, schedulerCalls,
} from './process-state';
import { restoreSeccomp, type SeccompTable } from './seccomp';
import { dumpPosixTimers, restorePosixTimers } from './posix-timers';
import { SIGACTION_SIGNALS, signalOfSigaction } from './sigactions';
import type { RemoteSyscall, TableCall } from '../ptrace/remote-syscall';
import { QueryBatch } from './query-batch';
import type { Tracee } from '../ptrace/tracee';
import { parseStatus, procRead, type ProcStat } from './proc';
import { readU64, u64Words, writeU64 } from '../kernel/bytes';

const X86_MODE_NATIVE = 1;

/** What only the task itself can tell, read by injected syscalls in its main thread. */
export function dumpSigactions(q: QueryBatch): () => SaEntry[] {
  const slots = q.slot(KSIGACTION_SIZE * SIGACTION_SIGNALS.length);
  SIGACTION_SIGNALS.forEach((sig, i) => q.add({ name: 'rt_sigaction', args: [sig, 0, slots + BigInt(i * KSIGACTION_SIZE), 8], detail: `signal ${sig}` }));
  return () => {
    // a leader's 64 struct k_sigaction, as words: handler, flags, restorer, mask each
    const words = u64Words(q.bytes(slots, KSIGACTION_SIZE * SIGACTION_SIGNALS.length));
    const per = KSIGACTION_SIZE / 8;
    return SIGACTION_SIGNALS.map((_, i) => ({ sigaction: words[i * per], flags: words[i * per + 1], restorer: words[i * per + 2], mask: words[i * per + 3] }));
  };
}

export function dumpTidAddress(q: QueryBatch): () => bigint {
  const slot = q.slot(8);
  q.add({ name: 'prctl', args: [PR.GET_TID_ADDRESS, slot] });
  return () => readU64(q.bytes(slot, 8), 0);
}

/** The answers a thread's QueryBatch gives, read once it has run. */
interface AskedOfThread {
  clearTidAddr: () => bigint;
  sas: () => ThreadSasEntry;
  nice: () => number;
  scheduler: () => { schedPolicy: number; schedPrio: number };
  pdeathSig: () => number;
  creds: () => CredsEntry;
  sigactions?: () => SaEntry[];
  rlimits?: () => TaskRlimitsEntry;
  childSubreaper?: () => boolean;
  itimers?: () => TaskTimersEntry;
}

export interface ThreadSnapshot {
  tid: number;
  regs: Registers;
  xstate: Buffer;
  sigmask: bigint;
}

/** The registers and per-thread state of a stopped thread, before anything is injected. */
export function snapshotThread(tracee: Tracee): ThreadSnapshot {
  return { tid: tracee.tid, regs: tracee.getRegs(), xstate: tracee.getXstate(), sigmask: tracee.getSigmask() };
}

/** A thread of the frozen tree and what its core entry is made from. */
export interface ThreadToDump {
  seccomp: SeccompTable;
  snap: ThreadSnapshot;
  tracee: Tracee;
  remote: RemoteSyscall;
  /** its process's stat */
  stat: ProcStat;
  pid: number;
  /** its process was job-control stopped */
  stopped: boolean;
}

/**
 * A thread's core entry, in two halves: this one sets its questions going in one stop of the
 * thread (QueryBatch), the one it returns waits for the answers and builds the entry. Threads
 * that share no scratch area (those of other processes) may be started together; until its
 * second half has run the thread is running, and nothing else may be done to it.
 */
export function startCoreEntry(thread: ThreadToDump): () => CoreEntry {
  const { snap, remote, pid } = thread;
  const isLeader = snap.tid === pid;
  // read once: its creds and seccomp, and the signals the batch may end with (batchEnd)
  const rawStatus = procRead(pid, `task/${snap.tid}/status`);
  let status: Map<string, string> | undefined;
  const threadStatus = () => (status ??= parseStatus(rawStatus));
  const q = new QueryBatch(remote);
  const asked = {
    clearTidAddr: dumpTidAddress(q), sas: dumpAltStack(q), nice: dumpNice(q), scheduler: dumpScheduler(q), pdeathSig: dumpPdeathsig(q),
    creds: dumpCreds(q, threadStatus),
    ...(isLeader ? { sigactions: dumpSigactions(q), rlimits: dumpRlimits(q), childSubreaper: dumpChildSubreaper(q), itimers: dumpItimers(q) } : {}),
  };
  const answered = q.start(rawStatus);
  return () => {
    answered();
    return coreEntryOf(thread, threadStatus, asked);
  };
}

function coreEntryOf(thread: ThreadToDump, threadStatus: () => Map<string, string>, asked: AskedOfThread): CoreEntry {
  const { seccomp, snap, tracee, remote, stat, pid, stopped } = thread;
  const robust = getRobustList(snap.tid);
  const rseq = tracee.getRseqConfig();
  const { regs, restartAx } = imageRegisters(snap.regs);
  const gpregs: UserX86RegsEntry = { ...regs.toRecord(), mode: X86_MODE_NATIVE };
  const entry: CoreEntry = {
    mtype: 1,
    threadInfo: {
      clearTidAddr: asked.clearTidAddr(),
      gpregs,
      fpregs: fpregsFromXsave(snap.xstate),
      tls: [],
      xsaveRaw: snap.xstate,
      ...(restartAx !== undefined ? { amberRestartAx: restartAx } : {}),
    },
    threadCore: {
      futexRla: robust.head,
      futexRlaLen: Number(robust.len),
      blkSigset: snap.sigmask,
      comm: readFileSync(`/proc/${pid}/task/${snap.tid}/comm`, 'utf8').trim(),
      sas: asked.sas(),
      schedNice: asked.nice(),
      ...asked.scheduler(),
      signalsP: { signals: tracee.peekSiginfo(false).map((siginfo) => ({ siginfo })) },
      pdeathSig: asked.pdeathSig(),
      creds: asked.creds(),
      ...seccomp.dumpThread(pid, snap.tid, threadStatus()),
      ...(rseq.pointer ? { rseqEntry: { rseqAbiPointer: rseq.pointer, rseqAbiSize: rseq.size, signature: rseq.signature } } : {}),
    },
  };
  if (asked.sigactions) {
    entry.tc = {
      taskState: stopped ? TaskState.STOPPED : TaskState.ALIVE,
      exitCode: 0,
      personality: parseInt(readFileSync(`/proc/${snap.tid}/personality`, 'utf8').trim(), 16),
      flags: stat.flags,
      blkSigset: snap.sigmask,
      comm: stat.comm,
      sigactions: asked.sigactions(),
      rlimits: asked.rlimits!(),
      childSubreaper: asked.childSubreaper!(),
      signalsS: { signals: tracee.peekSiginfo(true).map((siginfo) => ({ siginfo })) },
      timers: { ...asked.itimers!(), posix: dumpPosixTimers(remote, readFileSync(`/proc/${pid}/timers`, 'utf8')) },
    };
  }
  return entry;
}

/** The registers as the kernel held them: gpregs, with amber's record of an interrupted syscall put back. */
export function registersOf(core: CoreEntry): Registers {
  const r = new Registers();
  const info = threadInfoOf(core);
  for (const n of REG_NAMES) r.set(n, info.gpregs[n]);
  const code = info.amberRestartAx;
  if (code === undefined) return r;
  if (reExecuted(code)) r.set('ip', r.get('ip') + 2n);
  r.set('ax', BigInt.asUintN(64, code));
  return r;
}

const reExecuted = (code: bigint) => code === -BigInt(ERESTART.SYS) || code === -BigInt(ERESTART.NOINTR) || code === -BigInt(ERESTART.NOHAND);

/**
 * The registers of a thread stopped inside a syscall as CRIU writes them (its restore cannot
 * restart a syscall): one the kernel would restart is set up to run again (rax = orig_rax, rip
 * back on the syscall instruction); a restart_syscall kind returns -EINTR. restartAx keeps the
 * kernel's code, for amber's own restore.
 */
export function imageRegisters(regs: Registers): { regs: Registers; restartAx?: bigint } {
  if (regs.getSigned('origAx') < 0n) return { regs };
  const code = regs.getSigned('ax');
  const out = regs.clone();
  if (reExecuted(code)) {
    out.set('ax', regs.get('origAx'));
    out.set('ip', regs.get('ip') - 2n);
  } else if (code === -BigInt(ERESTART.RESTARTBLOCK)) {
    out.set('ax', BigInt.asUintN(64, -4n /* -EINTR */));
  } else return { regs };
  return { regs: out, restartAx: code };
}

/**
 * Puts back the process-wide (leader only) and per-thread state that is set by syscalls in the
 * task, in two halves: this one sets the task's call loop going and returns the rest, which waits
 * for it and then does what needs answers (POSIX timers, seccomp, credentials). Tasks that share
 * no scratch area (other processes) can be started together. Credentials go last: after them
 * the task may no longer be allowed the rest. What needs no answer runs in the one call loop: a
 * stop of the task instead of one per call (a leader's 62 sigactions alone were a third of a
 * restore's round trips).
 */
export function startTaskState(remote: RemoteSyscall, core: CoreEntry, seccomp: SeccompEntry | undefined, warn: (m: string) => void, tgid: number): () => void {
  remote.resetData();
  const calls: TableCall[] = [];
  if (core.tc) {
    const count = core.tc.sigactions.length;
    core.tc.sigactions.forEach((sa, i) => {
      const sig = signalOfSigaction(i, count);
      if (sig === undefined || sig === SIG.KILL || sig === SIG.STOP) return;
      const act = Buffer.alloc(KSIGACTION_SIZE);
      writeU64(act, 0, sa.sigaction);
      writeU64(act, 8, sa.flags);
      writeU64(act, 16, sa.restorer);
      writeU64(act, 24, sa.mask);
      calls.push({ name: 'rt_sigaction', args: [sig, act, 0, 8], detail: `signal ${sig}` });
    });
    if (core.tc.rlimits) calls.push(...rlimitCalls(remote, core.tc.rlimits, warn));
    if (core.tc.timers) calls.push(...itimerCalls(core.tc.timers));
    calls.push({ name: 'personality', args: [core.tc.personality] });
    if (core.tc.childSubreaper) calls.push({ name: 'prctl', args: [PR.SET_CHILD_SUBREAPER, 1] });
  }
  const tc = core.threadCore;
  if (!tc) throw new ImageError(`core image of pid ${remote.pid} has no thread_core`);
  if (tc.futexRla) calls.push({ name: 'set_robust_list', args: [tc.futexRla, tc.futexRlaLen] });
  calls.push({ name: 'set_tid_address', args: [threadInfoOf(core).clearTidAddr] });
  if (tc.rseqEntry) {
    const r = tc.rseqEntry;
    calls.push({ name: 'rseq', args: [r.rseqAbiPointer, r.rseqAbiSize, 0, r.signature], detail: `area 0x${r.rseqAbiPointer.toString(16)}` });
  }
  const comm = tc.comm ?? core.tc?.comm;
  if (comm) calls.push({ name: 'prctl', args: [PR.SET_NAME, remote.stageString(comm.slice(0, 15))] });
  if (tc.sas) calls.push(...altStackCalls(tc.sas));
  if (tc.schedNice !== undefined) calls.push(niceCall(tc.schedNice));
  calls.push(...schedulerCalls(tc.schedPolicy ?? 0, tc.schedPrio ?? 0));
  if (core.tc) calls.push(...pendingSignalCalls(remote.pid, remote.pid, core.tc.signalsS, true));
  calls.push(...pendingSignalCalls(remote.pid, tgid, tc.signalsP, false));
  const loop = remote.beginCalls(calls);
  return () => {
    const { error } = loop();
    if (error) throw error;
    remote.resetData();
    // timer_create must say which id it got, before the next
    if (core.tc?.timers) restorePosixTimers(remote, core.tc.timers.posix);
    restoreSeccomp(remote, tc, seccomp);
    if (tc.creds) restoreCreds(remote, tc.creds);
    // after the credentials: changing them clears the parent-death signal
    if (tc.pdeathSig) remote.sys.prctl(PR.SET_PDEATHSIG, tc.pdeathSig);
  };
}

export function threadInfoOf(core: CoreEntry): NonNullable<CoreEntry['threadInfo']> {
  if (!core.threadInfo) throw new ImageError('core image has no x86-64 thread_info (dumped on another architecture?)');
  return core.threadInfo;
}

import { existsSync, readlinkSync } from 'node:fs';
import { CLONE, PTRACE_EVENT, PTRACE_O, SIG, WALL } from '../kernel/constants';
import { AmberError, KernelError, errnoNumber } from '../kernel/errors';
import { close, kill, waitpid, WaitStatus } from '../kernel/syscalls';
import { sleepSync } from '../kernel/libc';
import { spawnProgram } from '../kernel/spawn';
import { writeU32 } from '../kernel/bytes';
import { UnexpectedStopError } from '../ptrace/errors';
import { RemoteSyscall, SCRATCH_SIZE } from '../ptrace/remote-syscall';
import { Tracee } from '../ptrace/tracee';
import { collectExits } from '../ptrace/wait';
import { procRead, parseStat } from './proc';
import { suspendSeccompOption } from './capabilities';
import { HELPER_NAME, helperMemfd } from './helper-image';

export class BusyPidError extends AmberError {
  constructor(readonly pid: number, holder: string) {
    super(`pid ${pid} is in use by ${holder}; amber restores a task with its old pid, so that pid must be free`);
  }
}

/** Who holds pid now, or undefined if it is free (a zombie still holds it until reaped). */
export function pidHolder(pid: number): { comm: string; state: string } | undefined {
  if (!existsSync(`/proc/${pid}`)) return undefined;
  try {
    const st = parseStat(procRead(pid, 'stat'));
    return { comm: st.comm, state: st.state };
  } catch {
    return undefined;
  }
}

export function describeHolder(pid: number): string {
  const h = pidHolder(pid);
  return h ? `'${h.comm}' (state ${h.state}${h.state === 'Z' ? ', a zombie its parent has not reaped' : ''})` : 'another task';
}

export interface CreatedTask {
  pid: number;
  tracee: Tracee;
  remote: RemoteSyscall;
}

const ALL_SIGNALS = 0xffffffffffffffffn;
const CLONE_ARGS_SIZE = 88;

/**
 * Creates processes with chosen pids. A parked helper process (not a child of Node, whose libuv
 * would reap its stops) is traced; an injected clone3 with set_tid makes each new task, which
 * arrives already traced and is then rebuilt by injected syscalls.
 */
export class TaskCreator {
  private helper?: CreatedTask;

  /**
   * `inCallersSession`: the helper (and so every task it makes) stays in amber's session and
   * process group, with amber's controlling terminal, for a shell job; else it leads a session
   * of its own.
   */
  constructor(private readonly avoid: { start: bigint; end: bigint }[], private readonly inCallersSession = false) {}

  /** The helper's scratch area; every created task inherits it at the same address. */
  get scratch() {
    return this.ensureHelper().remote.scratch;
  }

  /**
   * A new task with the given pid (or tid, with CLONE_THREAD), made by `parent` (the helper when
   * absent). It arrives stopped, traced, with every signal blocked.
   */
  createTask(pid: number, parent?: RemoteSyscall, flags = 0, waitForZombieMs = 10_000): CreatedTask {
    const maker = parent ?? this.ensureHelper().remote;
    const scratch = this.scratch;
    const deadline = Date.now() + waitForZombieMs;
    for (;;) {
      maker.resetData();
      const setTid = Buffer.alloc(4);
      setTid.writeInt32LE(pid, 0);
      const r = maker.sysRaw.clone3(cloneArgs(flags, maker.stage(setTid)), CLONE_ARGS_SIZE);
      if (r === -errnoNumber('EEXIST')) {
        if (pidHolder(pid)?.state === 'Z' && Date.now() < deadline) {
          sleepSync(50);
          continue;
        }
        throw new BusyPidError(pid, describeHolder(pid));
      }
      if (r < 0) throw new KernelError(`clone3 (in pid ${maker.pid})`, -r, pid, 'creating the task');
      const tracee = Tracee.adopt(r);
      const status = tracee.wait('creation');
      if (WaitStatus.event(status) !== PTRACE_EVENT.STOP) throw new UnexpectedStopError(r, status, 'the first stop of a new task');
      tracee.setSigmask(ALL_SIGNALS);
      return { pid: r, tracee, remote: RemoteSyscall.inherit(tracee, scratch, true, undefined, flags & CLONE.VM ? maker : undefined) };
    }
  }

  /**
   * Threads of one process (CLONE_THREAD in `flags`) with the given tids, made by `parent` in
   * one call loop: a stop of the parent per thread for its clone event, not two. Each made thread
   * is handed to `made` at once (so that an undo finds it) and then taken from its first stop. A
   * clone3 that fails (a tid busy, or held by a zombie not yet reaped) and those after it go one
   * by one through createTask, which waits for a zombie.
   * In two halves, for together(): this one sets the parent's loop of clone3s going, the returned
   * one takes the threads from their first stops. Processes do not share a scratch area's
   * contents, so several parents' loops can run at once.
   */
  beginThreads(tids: number[], parent: RemoteSyscall, flags: number, made: (t: CreatedTask) => void): () => void {
    if (tids.length < 2) return () => {
      for (const tid of tids) made(this.createTask(tid, parent, flags));
    };
    const scratch = this.scratch;
    parent.resetData();
    const setTids = Buffer.alloc(4 * tids.length);
    for (let i = 0; i < tids.length; i++) writeU32(setTids, 4 * i, tids[i]);
    const setTidsAt = parent.stage(setTids);
    const loop = parent.beginCalls(
      tids.map((tid, i) => ({ name: 'clone3', args: [cloneArgs(flags, setTidsAt + BigInt(4 * i)), CLONE_ARGS_SIZE], detail: `thread ${tid}` })),
    );
    return () => {
      const { results } = loop();
      parent.resetData();
      const created = results.filter((r): r is number => r !== undefined && r > 0);
      const tasks = created.map((tid) => {
        const tracee = Tracee.adopt(tid);
        return { pid: tid, tracee, remote: RemoteSyscall.inherit(tracee, scratch, false, undefined, flags & CLONE.VM ? parent : undefined) };
      });
      tasks.forEach(made);
      for (const { pid: tid, tracee, remote } of tasks) {
        const status = tracee.wait('creation');
        if (WaitStatus.event(status) !== PTRACE_EVENT.STOP) throw new UnexpectedStopError(tid, status, 'the first stop of a new task');
        tracee.setSigmask(ALL_SIGNALS);
        remote.adoptRegisters();
      }
      for (const tid of tids.slice(created.length)) made(this.createTask(tid, parent, flags));
    };
  }

  dispose(): void {
    if (!this.helper) return;
    const pid = this.helper.pid;
    try {
      kill(pid, SIG.KILL);
    } catch {
      // already gone
    }
    collectExits([this.helper.tracee]);
    this.helper = undefined;
  }

  private ensureHelper(): CreatedTask {
    if (this.helper) return this.helper;
    // The helper runs a program that exists only in a memfd (helper-image.ts), its fd 3, exec'd
    // through /proc/self/fd/3: its exe is the memfd. In a session of its own (setsid), but for a
    // shell job, which stays in the caller's.
    const memfd = helperMemfd();
    let pid: number;
    try {
      pid = spawnProgram('/proc/self/fd/3', [HELPER_NAME], { fd3: memfd, newSession: !this.inCallersSession });
    } catch (e) {
      const why = e instanceof KernelError && e.errnoName === 'EACCES' ? ' (it runs from a memfd: is vm.memfd_noexec 2?)' : '';
      throw new AmberError(`restore helper did not start: ${(e as Error).message}${why}`);
    } finally {
      close(memfd);
    }
    if (!safeReadlink(`/proc/${pid}/exe`).startsWith(`/memfd:${HELPER_NAME}`)) {
      // our own child, not yet waited for: its pid cannot have gone to anyone else
      kill(pid, SIG.KILL);
      waitpid(pid, WALL);
      throw new AmberError(`restore helper (pid ${pid}) is not running amber's helper program`);
    }
    // a helper that cannot be taken is killed and reaped here: no dispose() will know of it
    let tracee: Tracee;
    let remote: RemoteSyscall | undefined;
    try {
      tracee = Tracee.seize(pid, PTRACE_O.TRACEFORK | PTRACE_O.TRACECLONE | PTRACE_O.TRACEVFORK | PTRACE_O.EXITKILL | suspendSeccompOption());
      tracee.setSigmask(ALL_SIGNALS);
      for (const hint of scratchCandidates(this.avoid)) {
        try {
          remote = RemoteSyscall.bootstrap(tracee, hint);
          break;
        } catch (e) {
          if (!(e instanceof KernelError && e.errnoName === 'EEXIST')) throw e;
        }
      }
      if (!remote) throw new AmberError('no free address for the restore scratch area');
    } catch (e) {
      kill(pid, SIG.KILL);
      waitpid(pid, WALL);
      throw e;
    }
    this.helper = { pid, tracee, remote };
    return this.helper;
  }
}

/** struct clone_args for one task whose pid (tid) is the int at setTidAddr. */
function cloneArgs(flags: number, setTidAddr: bigint): Buffer {
  const args = Buffer.alloc(CLONE_ARGS_SIZE);
  args.writeBigUInt64LE(BigInt(flags), 0);
  // with CLONE_THREAD or CLONE_PARENT the kernel wants 0 here: the exit signal is the caller's
  args.writeBigUInt64LE(BigInt(flags & (CLONE.THREAD | CLONE.PARENT) ? 0 : SIG.CHLD), 32); // exit_signal
  args.writeBigUInt64LE(setTidAddr, 64); // set_tid
  args.writeBigUInt64LE(1n, 72); // set_tid_size
  return args;
}

function safeReadlink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}

function* scratchCandidates(avoid: { start: bigint; end: bigint }[]): Generator<bigint> {
  const size = BigInt(SCRATCH_SIZE);
  for (let a = 0x10000000n; a < 0x7f0000000000n; a += 0x40000000n) {
    if (!avoid.some((r) => a < r.end && r.start < a + size)) yield a;
  }
}

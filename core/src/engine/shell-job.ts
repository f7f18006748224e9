import { KSIGACTION_SIZE, SIG, WNOHANG } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { close, kill, rtSigaction, waitpid, WaitStatus } from '../kernel/syscalls';
import { getpgid, getsid, openControllingTerminal, tcgetpgrp, tcsetpgrp } from '../kernel/terminal';
import type { PstreeEntry } from '../images';
import type { Logger } from './logger';
import { waitForExit } from './wait-exit';

const WUNTRACED = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * CRIU's --inherit-fd key for a terminal: `tty[RDEV:DEV]`, the slave's st_rdev and st_dev in hex
 * (as fstat gives them for the dumped fd), e.g. `--inherit-fd fd[0]:tty[8803:19]`.
 */
export function ttyInheritKey(rdev: bigint | number, dev: bigint | number): string {
  return `tty[${BigInt(rdev).toString(16)}:${BigInt(dev).toString(16)}]`;
}

/** Parses a `tty[RDEV:DEV]` key, or undefined when key is not one. */
export function parseTtyInheritKey(key: string): { rdev: bigint; dev: bigint } | undefined {
  const m = /^tty\[([0-9a-f]+):([0-9a-f]+)\]$/i.exec(key);
  return m ? { rdev: BigInt(`0x${m[1]}`), dev: BigInt(`0x${m[2]}`) } : undefined;
}

/**
 * The tree as a -j restore made it (what ShellJob.adopt does), for compare: the root's outside
 * session is the live one when that too is led from outside the tree, and its outside group is
 * the one the root leads.
 */
export function asRestoredShellJob(entries: PstreeEntry[], liveRootSid: number): void {
  if (!entries.some((e) => e.pid === liveRootSid)) intoSession(entries, liveRootSid);
}

/**
 * The root's session and group led from outside the tree become `sid` and a group the root
 * leads (every member of the old group joins it). Returns what was replaced.
 */
function intoSession(entries: PstreeEntry[], sid: number): { oldSid?: number; oldPgid?: number } {
  const root = entries[0];
  const inTree = new Set(entries.map((e) => e.pid));
  const oldSid = root.sid !== root.pid && !inTree.has(root.sid) ? root.sid : undefined;
  const oldPgid = root.pgid !== root.pid && !inTree.has(root.pgid) ? root.pgid : undefined;
  for (const e of entries) {
    if (oldSid !== undefined && e.sid === oldSid) e.sid = sid;
    if (oldPgid !== undefined && e.pgid === oldPgid) e.pgid = root.pid;
  }
  return { oldSid, oldPgid };
}

/**
 * amber's side of restoring a shell job (--shell-job), as a shell runs a job: the tree joins
 * amber's own session (the dumped one belonged to a shell outside the tree), its root leads a
 * process group of its own, that group becomes the foreground of amber's terminal, and when the
 * job ends amber's group gets the terminal back.
 */
export class ShellJob {
  private handedTo: number | undefined;
  private jobPgrp: number | undefined;
  /** amber's SIGTTOU action while it ignores the signal, as a shell does. */
  private ttou: Buffer | undefined;

  private constructor(
    private readonly log: Logger,
    readonly sid: number,
    readonly pgrp: number,
    /** amber's controlling terminal, when it has one. */
    private readonly terminal: number | undefined,
    /** A detached restore (-d) does not wait for the job, so it leaves it in the background. */
    private readonly background: boolean,
  ) {}

  /** Taken before anything is created, so that what it finds decides before the restore begins. */
  static forRestore(shellJob: boolean | undefined, detached: boolean, log: Logger): ShellJob | undefined {
    if (!shellJob) return undefined;
    const job = new ShellJob(log, getsid(0), getpgid(0), openControllingTerminal(), detached);
    if (job.terminal === undefined) log.info('--shell-job: amber has no controlling terminal; the job joins its session without one');
    return job;
  }

  /**
   * The root's dumped session and group, led from outside the tree, become amber's session and
   * a group the root leads (every member of the old group joins it).
   */
  adopt(entries: PstreeEntry[]): void {
    const { oldSid, oldPgid } = intoSession(entries, this.sid);
    if (oldSid !== undefined) this.log.debug(`shell job: session ${oldSid} -> amber's ${this.sid}`);
    if (oldPgid !== undefined) this.log.debug(`shell job: process group ${oldPgid} -> ${entries[0].pid}`);
  }

  /**
   * Hands the terminal to the job's group, if the job is in amber's session and amber itself is
   * the foreground there (a restore started in the background leaves the job in the background).
   */
  makeForeground(root: PstreeEntry): void {
    this.jobPgrp = root.pgid;
    if (this.terminal === undefined || this.background || root.sid !== this.sid) return;
    if (tcgetpgrp(this.terminal) !== this.pgrp) {
      this.log.warn(`--shell-job: amber is not the foreground job of its terminal; pid ${root.pid} stays in the background`);
      return;
    }
    tcsetpgrp(this.terminal, root.pgid);
    this.handedTo = root.pgid;
    // From now on amber is in the background of its terminal: on one with TOSTOP set its own
    // output (the "Restored" line, warnings) would stop it, unless it ignores SIGTTOU.
    if (!this.ttou) {
      const ignore = Buffer.alloc(KSIGACTION_SIZE);
      ignore.writeBigUInt64LE(1n, 0); // SIG_IGN
      this.ttou = Buffer.alloc(KSIGACTION_SIZE);
      rtSigaction(SIG.TTOU, ignore, this.ttou);
    }
  }

  /** The terminal back to amber's group once the job is over, as a shell takes it back (also after a failed restore). */
  giveBack(): void {
    if (this.terminal === undefined || this.handedTo === undefined) return;
    try {
      tcsetpgrp(this.terminal, this.pgrp);
    } catch (err) {
      this.log.warn(`--shell-job: could not take the terminal back: ${(err as Error).message}`);
    } finally {
      this.handedTo = undefined;
    }
  }

  /**
   * Waits for the job's root to exit, as a shell waits for its foreground job, and returns its
   * status as a shell would. When the job stops (^Z reaches its group), amber does what makes the
   * shell that started amber see it: takes the terminal back and stops its own group, so to
   * that shell amber and the job are one stopped job. Once continued (fg, or bg) it continues
   * the job, giving it the terminal again if amber got it back.
   */
  async wait(rootPid: number): Promise<number | undefined> {
    for (;;) {
      let r;
      try {
        r = waitpid(rootPid, WNOHANG | WUNTRACED);
      } catch (e) {
        if (e instanceof KernelError && e.errnoName === 'ECHILD') return waitForExit(rootPid);
        throw e;
      }
      if (r.pid === rootPid) {
        if (!WaitStatus.stopped(r.status)) return WaitStatus.exited(r.status) ? WaitStatus.exitCode(r.status) : 128 + WaitStatus.termSig(r.status);
        this.suspend(rootPid);
        continue;
      }
      await sleep(50);
    }
  }

  private suspend(rootPid: number): void {
    // A job that never had the terminal (amber in the background, or on none) is waited for as a
    // shell without job control waits: it stays stopped until someone continues it.
    const hadTerminal = this.handedTo !== undefined;
    if (!hadTerminal) return;
    this.giveBack();
    this.log.debug(`shell job: pid ${rootPid} stopped; amber's group ${this.pgrp} stops too`);
    // The kernel discards SIGTSTP for an orphaned group (no shell to continue it): then amber just goes on.
    kill(-this.pgrp, SIG.TSTP);
    // ... continued by the shell
    if (this.jobPgrp === undefined) return;
    if (this.terminal !== undefined && tcgetpgrp(this.terminal) === this.pgrp) {
      tcsetpgrp(this.terminal, this.jobPgrp);
      this.handedTo = this.jobPgrp;
    }
    kill(-this.jobPgrp, SIG.CONT);
  }

  close(): void {
    if (this.ttou) rtSigaction(SIG.TTOU, this.ttou, null);
    this.ttou = undefined;
    if (this.terminal !== undefined) close(this.terminal);
  }
}

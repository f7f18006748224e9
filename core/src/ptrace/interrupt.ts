import { SIG } from '../kernel/constants';
import { AmberError, KernelError } from '../kernel/errors';
import { SignalTrap } from '../kernel/signal-trap';

/** The signals that ask amber to stop: a user's Ctrl-C, Ctrl-\, a hang-up, a plain kill. */
export const INTERRUPT_SIGNALS: number[] = [SIG.INT, SIG.TERM, SIG.HUP, SIG.QUIT];

const NAMES: Record<number, string> = { [SIG.INT]: 'SIGINT', [SIG.TERM]: 'SIGTERM', [SIG.HUP]: 'SIGHUP', [SIG.QUIT]: 'SIGQUIT' };

/** amber was asked to stop (SIGINT, SIGTERM, ...) in the middle of its work. */
export class InterruptedError extends AmberError {
  readonly signalName: string;
  constructor(readonly signal: number, readonly outcome?: string) {
    const name = NAMES[signal] ?? `signal ${signal}`;
    super(`interrupted by ${name}${outcome ? `: ${outcome}` : ''}`);
    this.signalName = name;
  }

  /** The same interruption, saying what became of the work. */
  withOutcome(outcome: string): InterruptedError {
    return new InterruptedError(this.signal, outcome);
  }
}

let current: InterruptGuard | undefined;
let deferred = 0;

/**
 * Turns SIGINT/SIGTERM/SIGHUP/SIGQUIT into an InterruptedError thrown on amber's main thread, at
 * the next point that can stop cleanly: the start of every injected call (a blocked wait4 returns
 * at once, see SignalTrap, and the call in progress is finished first) and every checkpoint()
 * the engine passes. It is thrown once per arming:
 * what runs after it, the undo, must run to its end, so later signals are only counted.
 * Armed by the engine around dump, pre-dump and restore; disarm() puts the previous
 * dispositions back.
 */
export class InterruptGuard {
  private thrown = false;
  private held = false;

  private constructor(private readonly trap: SignalTrap) {}

  static arm(): InterruptGuard {
    if (current) throw new Error('InterruptGuard armed twice');
    current = new InterruptGuard(SignalTrap.install(INTERRUPT_SIGNALS));
    return current;
  }

  /** The guard armed now, if any. */
  static get active(): InterruptGuard | undefined {
    return current;
  }

  /** A signal arrived (whether or not it was thrown yet). */
  get interrupted(): boolean {
    return this.trap.count > 0;
  }

  get signal(): number {
    return this.trap.lastSignal;
  }

  /** A signal arrived that is still to be thrown: the caller should get to a clean stop and check(). */
  get pending(): boolean {
    return !this.thrown && !this.held && deferred === 0 && this.interrupted;
  }

  /** Throws the InterruptedError if a signal arrived and none was thrown yet. */
  check(): void {
    if (!this.pending) return;
    this.thrown = true;
    throw new InterruptedError(this.signal);
  }

  /** From now on nothing is thrown (the undo or the end is running); signals are still caught. */
  hold(): void {
    this.held = true;
  }

  disarm(): void {
    if (current !== this) return;
    current = undefined;
    this.trap.uninstall();
  }

  /** Runs body with a guard armed, disarmed afterwards whatever happens. */
  static async around<T>(body: (guard: InterruptGuard) => Promise<T>): Promise<T> {
    if (current) return body(current);
    const guard = InterruptGuard.arm();
    try {
      return await body(guard);
    } finally {
      guard.disarm();
    }
  }
}

/** A point between two steps of the work where an interruption can stop it cleanly. */
export function checkpoint(): void {
  current?.check();
}

/**
 * Runs fn with no interruption thrown inside: for steps that put back what the steps before
 * changed, which must run to their end once begun.
 */
export function deferInterrupts<T>(fn: () => T): T {
  deferred++;
  try {
    return fn();
  } finally {
    deferred--;
  }
}

/**
 * What an error thrown while amber was being interrupted stands for: a system call of amber's own
 * that the wake-up cut short (EINTR) is the interruption itself.
 */
export function asInterruption(e: unknown, guard: InterruptGuard): unknown {
  if (e instanceof InterruptedError || !guard.interrupted) return e;
  return e instanceof KernelError && e.errnoName === 'EINTR' ? new InterruptedError(guard.signal) : e;
}

/** An interruption is waiting to be thrown at the next checkpoint. */
export function interruptPending(): boolean {
  return current?.pending ?? false;
}

import { AmberError } from '../kernel/errors';
import { WaitStatus } from '../kernel/syscalls';

/** A traced task did something other than stop where amber expected it to. */
export class UnexpectedStopError extends AmberError {
  constructor(readonly pid: number, readonly status: number, readonly expected: string) {
    super(`pid ${pid}: expected ${expected}, but it ${WaitStatus.describe(status)}`);
  }
}

/** A traced task exited or was killed while amber worked on it. */
export class TaskGoneError extends AmberError {
  constructor(readonly pid: number, readonly status: number, readonly during: string) {
    super(`pid ${pid} ${WaitStatus.describe(status)} during ${during}`);
  }
}

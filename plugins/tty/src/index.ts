import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { ResourcePlugin } from '@amber/core';

/** Terminals: pseudo-terminal pairs, controlling terminals, the caller's terminal (--shell-job). */
@injectable()
export class TerminalsPlugin implements ResourcePlugin {
  readonly name = 'tty';
  readonly phase = 'resources' as const;
  readonly fileKinds = [];
}

export default TerminalsPlugin;

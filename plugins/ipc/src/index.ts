import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { ResourcePlugin } from '@amber/core';

/** SysV IPC (shared memory, message queues, semaphores) and POSIX message queues. */
@injectable()
export class IpcPlugin implements ResourcePlugin {
  readonly name = 'ipc';
  readonly phase = 'resources' as const;
}

export default IpcPlugin;

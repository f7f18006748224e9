import type { RestoreTask } from '@amber/core';

// Terminal ioctls injected into a task being restored (those that act on the caller: its
// controlling terminal, its foreground group; and those on fds only the task holds yet).

/** An ioctl that writes an int into memory (TIOCGPTN): the int. */
export function ioctlGetIntIn(task: RestoreTask, fd: number, request: number, what: string): number {
  const remote = task.remote;
  remote.resetData();
  const arg = remote.reserve(4);
  remote.sys.with(what).ioctl(fd, request, arg);
  const value = remote.memory.read(arg, 4).readInt32LE(0);
  remote.resetData();
  return value;
}

/** An ioctl that reads an int from memory (TIOCSPTLCK, TIOCSPGRP). */
export function ioctlSetIntIn(task: RestoreTask, fd: number, request: number, value: number, what: string): void {
  const remote = task.remote;
  remote.resetData();
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  remote.sys.with(what).ioctl(fd, request, remote.stage(b));
  remote.resetData();
}

/** An ioctl whose argument is a plain value (TIOCSCTTY 0: do not steal the terminal from another session). */
export function ioctlValueIn(task: RestoreTask, fd: number, request: number, value: number, what: string): void {
  task.remote.resetData();
  task.remote.sys.with(what).ioctl(fd, request, value);
}

import { inject, injectable, type DependencyContainer } from 'tsyringe';
import { AmberError } from '../kernel/errors';
import type { ImageStore } from '../images';
import type { SharedObjects } from '../objects/shared-objects';
import type { FileRegistry } from './files';
import type { DumpedInodes, SharedInodes } from './inodes';
import type { Logger } from './logger';
import type { TaskFds } from './task-fds';

/*
 * The services of one run that a plugin may have injected (constructor parameters with
 * `@inject(IMAGE_STORE)`, or `injectServices` from plain JavaScript). The core resolves every
 * plugin anew for each dump, restore and compare, from a child container holding that run's
 * services; the same objects are on the run's context. Outside a run (loading, `amber check`,
 * --only/--skip names) a plugin is resolved with stand-ins that refuse every use: a constructor
 * may keep a service, not use it.
 */

/** The run's image directory (ImageStore). */
export const IMAGE_STORE = Symbol.for('amber.ImageStore');
/** The run's log (Logger). */
export const LOGGER = Symbol.for('amber.Logger');
/** Open file descriptions of the run, files.img (FileRegistry). */
export const FILE_REGISTRY = Symbol.for('amber.FileRegistry');
/** A dump's objects shared between tasks, found by kcmp (SharedObjects). */
export const SHARED_OBJECTS = Symbol.for('amber.SharedObjects');
/** A dump's one registry of inodes several plugins meet (DumpedInodes). */
export const DUMPED_INODES = Symbol.for('amber.DumpedInodes');
/** A restore's one registry of shared inodes (SharedInodes). */
export const SHARED_INODES = Symbol.for('amber.SharedInodes');
/** A restore's parking of fds in tasks and opening as the task (TaskFds). */
export const TASK_FDS = Symbol.for('amber.TaskFds');

/** What each token stands for: the services of one run. */
export interface RunServices {
  [IMAGE_STORE]: ImageStore;
  [LOGGER]: Logger;
  [FILE_REGISTRY]: FileRegistry;
  [SHARED_OBJECTS]: SharedObjects;
  [DUMPED_INODES]: DumpedInodes;
  [SHARED_INODES]: SharedInodes;
  [TASK_FDS]: TaskFds;
}
export type ServiceToken = keyof RunServices;

export const SERVICE_TOKENS: readonly ServiceToken[] = [IMAGE_STORE, LOGGER, FILE_REGISTRY, SHARED_OBJECTS, DUMPED_INODES, SHARED_INODES, TASK_FDS];

export class ServiceUnavailableError extends AmberError {}

/** A stand-in for a service this run does not have: any use of it is one clear error. */
export function unavailable(token: ServiceToken, when: string): object {
  const name = token.description ?? String(token);
  return new Proxy({}, {
    get(_t, prop) {
      if (prop === 'then' || typeof prop === 'symbol') return undefined; // not a promise, not inspectable
      throw new ServiceUnavailableError(`${name} is not available ${when} (a plugin used it there)`);
    },
  });
}

/** Registers the services a run has, and stand-ins for the others. */
export function registerServices(container: DependencyContainer, services: Partial<RunServices>, when: string): void {
  for (const token of SERVICE_TOKENS) {
    container.register(token, { useValue: services[token] ?? unavailable(token, when) });
  }
}

/**
 * For plugins written in plain JavaScript (no decorators): the class gets `tokens` as its
 * constructor parameters, in that order, as `@inject(...)` on each would.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function injectServices<C extends new (...args: any[]) => object>(cls: C, tokens: readonly ServiceToken[]): C {
  tokens.forEach((token, i) => inject(token)(cls, undefined, i));
  injectable()(cls);
  return cls;
}

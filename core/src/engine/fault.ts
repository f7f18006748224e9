import { AmberError } from '../kernel/errors';

export class InjectedFaultError extends AmberError {}

/**
 * Test hook: AMBER_FAULT=<point> makes amber fail at that point, so tests can prove a failure
 * there leaves the target as it was.
 */
export function faultPoint(point: string): void {
  if (skippedForTest(point)) throw new InjectedFaultError(`injected fault at ${point} (AMBER_FAULT)`);
}

/** Test hook: AMBER_FAULT=<point> also names a safety check a test wants skipped, to reach what it guards. */
export function skippedForTest(point: string): boolean {
  return process.env.AMBER_FAULT === point;
}

import { readFileSync } from 'node:fs';

/** amber's own peak resident memory so far, in KiB (VmHWM: ru_maxrss would count a parent's). */
export function peakRssKb(): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
}

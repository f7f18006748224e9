import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStore } from '@amber/core';
import { amber, describeAmber, type AmberResult } from './cli';

/** Runs amber and asserts it succeeded; the failure message carries its whole output. */
export function amberOk(args: string[], env?: NodeJS.ProcessEnv): AmberResult {
  const r = amber(args, { env });
  assert.equal(r.status, 0, describeAmber(args, r));
  return r;
}

/** One line on stderr, starting "amber:", and a non-zero exit (exactly `status` when given). */
export function assertOneLineError(args: string[], r: AmberResult, pattern: RegExp, status?: number): void {
  if (status === undefined) assert.notEqual(r.status, 0, describeAmber(args, r));
  else assert.equal(r.status, status, describeAmber(args, r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${describeAmber(args, r)}`);
  assert.match(lines[0], /^amber: /, describeAmber(args, r));
  assert.match(lines[0], pattern, describeAmber(args, r));
}

export interface CritImage {
  magic: string;
  // crit's JSON: whatever fields the image has
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  entries: Record<string, any>[];
}

/** Debian's `crit decode -i FILE` as JSON; asserts crit could decode it. */
export function critDecode(file: string): CritImage {
  const r = spawnSync('crit', ['decode', '-i', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `crit decode -i ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout) as CritImage;
}

/** pid and every descendant, from /proc/PID/task/TID/children. */
export function descendants(pid: number): number[] {
  const out = [pid];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (kids) for (const k of kids.split(/\s+/).map(Number)) out.push(...descendants(k));
  }
  return out;
}

/**
 * Image surgery for a test: replaces one image of a dumped set and reseals the inventory's list,
 * so the edit reaches the checks behind the digests.
 */
export function rewriteImage(store: ImageStore, type: string, name: string, entries: object[], opts?: { blobs: Buffer[] }): void {
  unlinkSync(join(store.dir, `${name}.img`));
  store.write(type, name, entries, opts);
  ImageStore.reseal(store.dir);
}

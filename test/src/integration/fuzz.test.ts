import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { cleanup } from '../harness';
import { BAD_OUTCOMES, describeReport, runFuzz } from '../fuzz/runner';

after(cleanup);

/*
 * Bounded fuzz over mutants of a real dump (the `files` target): truncations at entry boundaries
 * and mid-entry, deleted and emptied images, flipped bytes in small images, swapped images, cut
 * pages files; half of them with the inventory resealed to match, so they reach the decoders.
 * The long run is `node test/dist/fuzz/fuzz.js COUNT [SEED]`.
 */
const COUNT = 120;
const SEED = 20261201;

test(`${COUNT} mutated image sets: each one refused in one line or restored right; no hang, nothing left running or written outside`, { timeout: 600_000 }, async (t) => {
  const report = await runFuzz({ count: COUNT, seed: SEED, timeoutMs: 30_000 });
  const text = describeReport(report).join('\n');
  for (const line of text.split('\n')) t.diagnostic(line);
  assert.equal(report.results.length, COUNT);
  assert.deepEqual(report.controls.map((c) => c.split(':')[1].trim()), ['restored-passed', 'restored-passed'], text);
  assert.deepEqual(report.results.filter((r) => BAD_OUTCOMES.includes(r.outcome)).map((r) => `${r.mutant.label}: ${r.outcome}`), [], text);
  // every raw mutant (damage, not an edit) is refused before any task is made
  assert.deepEqual(report.results.filter((r) => !r.mutant.resealed && r.outcome !== 'refused').map((r) => r.mutant.label), [], text);
});

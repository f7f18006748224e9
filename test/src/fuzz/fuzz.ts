/**
 * The long fuzz run (not part of `npm test`):
 *   node test/dist/fuzz/fuzz.js [COUNT] [SEED]
 * Dumps the `files` target, restores COUNT mutants of its images (default 1000) and prints the
 * figures by outcome and mutation class, then every bad outcome. Exits 1 if there was one.
 */
import { cleanup } from '../harness';
import { BAD_OUTCOMES, describeReport, runFuzz } from './runner';

async function main(): Promise<number> {
  const count = Number(process.argv[2] ?? 1000);
  const seed = Number(process.argv[3] ?? Date.now() % 1_000_000);
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) {
    process.stderr.write('usage: node test/dist/fuzz/fuzz.js [COUNT] [SEED]\n');
    return 2;
  }
  process.stdout.write(`fuzz: ${count} mutants, seed ${seed}\n`);
  let done = 0;
  try {
    const report = await runFuzz({
      count, seed,
      onResult: (r) => {
        done++;
        if (r.outcome !== 'refused' || done % 50 === 0) process.stdout.write(`  #${r.mutant.index} ${r.mutant.label}: ${r.outcome} ${r.detail}\n`);
      },
    });
    process.stdout.write(`${describeReport(report).join('\n')}\n`);
    return report.results.some((r) => BAD_OUTCOMES.includes(r.outcome)) || report.controls.some((c) => !c.includes('restored-passed')) ? 1 : 0;
  } finally {
    await cleanup();
  }
}

main().then((code) => (process.exitCode = code), (err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});

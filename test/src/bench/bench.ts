// npm run bench [-- --only tree,memory --rounds 3 --sizes 256,1024 --profile]: amber and, when
// CRIU_BIN names a CRIU 4.x, CRIU on the same targets in the same run, alternating rounds, whole
// commands timed, images on /dev/shm, the median of the rounds; with the machine's ceilings for
// each size measured in the same run. Not a test: figures depend on the machine and its load.
import { loadavg } from 'node:os';
import { buildTargetsSync } from '../harness';
import { bareNodeStartup, measureCeilings } from './ceilings';
import { profileTree } from './profile';
import { dataPaths, dumpRestore, forest, incremental, memhog, startup } from './scenarios';
import { BenchUsageError, COMPARISON_HEAD, comparisonCells, footnoted, formatTable, parseBenchArgs, summarize, type ComparisonRow, type Sample } from './stats';
import { amberTool, criuFromEnv, removeScratch, type CheckpointTool } from './tools';

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const seconds = (bytes: number, perSec: number) => (bytes / perSec).toFixed(3);

async function main(): Promise<void> {
  const opts = parseBenchArgs(process.argv.slice(2));
  buildTargetsSync();
  if (opts.profile) {
    await profileTree();
    return;
  }
  const criu = criuFromEnv();
  const tools: CheckpointTool[] = [amberTool(), ...(criu.tool ? [criu.tool] : [])];
  console.log(`amber bench, ${new Date().toISOString()}, load average ${load()}, ${opts.rounds} rounds, median reported`);
  console.log(criu.tool ? `CRIU ${criu.version} (${process.env.CRIU_BIN}) in the same run, alternating with amber` : 'no CRIU was compared (CRIU_BIN unset): amber and the machine\'s ceilings only');

  const rows: ComparisonRow[] = [];
  const ceilings: string[][] = [];
  let nodeFloor: Sample | undefined;
  const print = (r: ComparisonRow[]) => {
    rows.push(...r);
    for (const row of r) console.error(`  ${comparisonCells(row).join('  ')}`);
  };
  for (const s of opts.scenarios) {
    console.error(`bench: ${s} ... (load ${load()})`);
    if (s === 'startup') {
      print(await startup(tools, opts.rounds));
      nodeFloor = summarize(Array.from({ length: opts.rounds }, bareNodeStartup));
      print(await dumpRestore(tools, opts.rounds, memhog(1), 'of a tiny process (1 MiB)'));
    } else if (s === 'memory') {
      for (const mb of opts.sizesMb) {
        print(await dumpRestore(tools, opts.rounds, memhog(mb), `${mb} MiB`));
        const c = measureCeilings(mb * 2 ** 20);
        const b = mb * 2 ** 20;
        ceilings.push([`${mb} MiB`, seconds(b, c.memcpy), seconds(b, c.freshWrite), seconds(b, c.tmpfsFirstWrite), (c.memcpy / 1e6).toFixed(0), (c.freshWrite / 1e6).toFixed(0), (c.tmpfsFirstWrite / 1e6).toFixed(0)]);
      }
    } else if (s === 'tree') print(await dumpRestore(tools, opts.rounds, forest(50, 4), 'tree of 50 processes x 4 threads'));
    else if (s === 'threads') print(await dumpRestore(tools, opts.rounds, forest(1, 24), 'one process of 24 threads'));
    else if (s === 'incremental') print(await incremental(tools, opts.rounds, opts.incrementalMb));
    else if (s === 'paths') print(await dataPaths((env) => amberTool({ env }), opts.rounds));
  }
  removeScratch();
  console.log('');
  const table = footnoted(rows);
  for (const l of formatTable(COMPARISON_HEAD, table.rows.map(comparisonCells))) console.log(l);
  for (const n of table.notes) console.log(n);
  if (nodeFloor) {
    console.log(`\nbare node start-up, same run (node -e 0, whole command: the floor of any amber command): ${nodeFloor.seconds.toFixed(3)} s, peak RSS ${Math.round(nodeFloor.peakRssKb / 1024)} MB`);
  }
  if (ceilings.length) {
    console.log('\nthe machine, same run (each in a fresh process):');
    for (const l of formatTable(['', 'memcpy s', 'fresh memory write s', 'tmpfs first write s', 'memcpy MB/s', 'fresh write MB/s', 'tmpfs write MB/s'], ceilings)) console.log(l);
  }
  console.log(`\nload average at the end ${load()}`);
}

main().catch((e: Error) => {
  removeScratch();
  console.error(e instanceof BenchUsageError ? e.message : `bench: ${e.message}`);
  process.exit(e instanceof BenchUsageError ? 2 : 1);
});

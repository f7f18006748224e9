// npm run bench [-- --only tree,memory --rounds 3 --sizes 256,1024 --profile]: amber and, when
// CRIU_BIN names a CRIU 4.x, CRIU on the same targets in the same run, alternating rounds, whole
// commands timed, images on /dev/shm, the median of the rounds; with the machine's ceilings for
// each size measured in the same run. Not a test: figures depend on the machine and its load.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { buildTargetsSync } from '../harness';
import { bareNodeStartup, measureCeilings, oclifStartup } from './ceilings';
import { profileTree } from './profile';
import { dataPaths, dumpRestore, forest, incremental, memhog, startup } from './scenarios';
import { BenchUsageError, COMPARISON_HEAD, comparisonCells, footnoted, formatTable, parseBenchArgs, summarize, type ComparisonRow, type Sample } from './stats';
import { amberTool, criuFromEnv, removeScratch, type CheckpointTool } from './tools';

/** The filesystem type of dir, as df names it (tmpfs, ext4 ...). */
function fsType(dir: string): string {
  const r = spawnSync('findmnt', ['-no', 'FSTYPE', '-T', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : 'unknown filesystem';
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const seconds = (bytes: number, perSec: number) => (bytes / perSec).toFixed(3);

async function main(): Promise<void> {
  const opts = parseBenchArgs(process.argv.slice(2));
  buildTargetsSync();
  if (opts.profile) {
    // its amber runs go through timed() too, whose scratch directory (/dev/shm) was left behind
    try {
      await profileTree();
    } finally {
      removeScratch();
    }
    return;
  }
  const criu = criuFromEnv();
  const tools: CheckpointTool[] = [amberTool(), ...(criu.tool ? [criu.tool] : [])];
  console.log(`amber bench, ${new Date().toISOString()}, load average ${load()}, ${opts.rounds} rounds, median reported, images in ${opts.imagesIn} (${fsType(opts.imagesIn)})`);
  console.log(criu.tool ? `CRIU ${criu.version} (${process.env.CRIU_BIN}) in the same run, alternating with amber` : 'no CRIU was compared (CRIU_BIN unset): amber and the machine\'s ceilings only');

  const rows: ComparisonRow[] = [];
  const ceilings: string[][] = [];
  let nodeFloor: Sample | undefined;
  let nodeWithCaCerts: Sample | undefined;
  let oclifFloor: Sample | undefined;
  const print = (r: ComparisonRow[]) => {
    rows.push(...r);
    for (const row of r) console.error(`  ${comparisonCells(row).join('  ')}`);
  };
  for (const s of opts.scenarios) {
    console.error(`bench: ${s} ... (load ${load()})`);
    if (s === 'startup') {
      print(await startup(tools, opts.rounds));
      nodeFloor = summarize(Array.from({ length: opts.rounds }, () => bareNodeStartup()));
      if (process.env.NODE_EXTRA_CA_CERTS) nodeWithCaCerts = summarize(Array.from({ length: opts.rounds }, () => bareNodeStartup(true)));
      oclifFloor = summarize(Array.from({ length: opts.rounds }, () => oclifStartup()));
      print(await dumpRestore(tools, opts.rounds, memhog(1), 'of a tiny process (1 MiB)', opts.imagesIn));
    } else if (s === 'memory') {
      for (const mb of opts.sizesMb) {
        print(await dumpRestore(tools, opts.rounds, memhog(mb), `${mb} MiB`, opts.imagesIn));
        const b = mb * 2 ** 20;
        const c = measureCeilings(b, opts.imagesIn);
        ceilings.push([`${mb} MiB`, seconds(b, c.memcpy), seconds(b, c.freshWrite), seconds(b, c.freshWrite2), seconds(b, c.firstWrite), seconds(b, c.firstWrite2)]);
      }
    } else if (s === 'tree') print(await dumpRestore(tools, opts.rounds, forest(50, 4), 'tree of 50 processes x 4 threads', opts.imagesIn));
    else if (s === 'threads') print(await dumpRestore(tools, opts.rounds, forest(1, 24), 'one process of 24 threads', opts.imagesIn));
    else if (s === 'incremental') print(await incremental(tools, opts.rounds, opts.incrementalMb, opts.imagesIn));
    else if (s === 'paths') print(await dataPaths((paths) => amberTool({ paths }), opts.rounds, opts.sizesMb.length === 1 ? opts.sizesMb[0] : 1024, opts.imagesIn));
  }
  removeScratch();
  console.log('');
  const table = footnoted(rows);
  for (const l of formatTable(COMPARISON_HEAD, table.rows.map(comparisonCells))) console.log(l);
  for (const n of table.notes) console.log(n);
  if (nodeFloor) {
    console.log(`\nbare node start-up, same run (node -e 0, whole command: the floor of any amber command): ${nodeFloor.seconds.toFixed(3)} s, peak RSS ${Math.round(nodeFloor.peakRssKb / 1024)} MB`);
    if (nodeWithCaCerts) {
      console.log(
        `  with this environment's NODE_EXTRA_CA_CERTS (${process.env.NODE_EXTRA_CA_CERTS}), which node reads and parses before it runs any JS, ` +
          `and amber's command drops: ${nodeWithCaCerts.seconds.toFixed(3)} s`,
      );
    }
  }
  if (oclifFloor) {
    console.log(
      `amber --help, same run (node, the one-file build and oclif, no core, plugins or koffi: the floor of a command through oclif): ` +
        `${oclifFloor.seconds.toFixed(3)} s, peak RSS ${Math.round(oclifFloor.peakRssKb / 1024)} MB`,
    );
  }
  if (ceilings.length) {
    const fs = fsType(opts.imagesIn);
    console.log('\nthe machine, same run (each in a fresh process; 2 streams: two threads, each half):');
    const head = ['', 'memcpy s', 'fresh memory write s', 'same, 2 streams s', `first write (${fs}) s`, 'same, 2 streams s'];
    for (const l of formatTable(head, ceilings)) console.log(l);
    console.log(
      'which bounds whom: CRIU dumps pages on one thread with vmsplice + splice, and so does amber by default on disk ' +
        'filesystems (on ext4 faster than the first write by write(2) measured here); on tmpfs the task copies into the front ' +
        'of the pages file while libuv threads zero its back (2 streams); CRIU restores on one thread (the fresh memory write, 1 stream), amber with UFFDIO_COPY on every ' +
        'core (2 streams).',
    );
  }
  console.log(`\nload average at the end ${load()}`);
}

main().catch((e: Error) => {
  removeScratch();
  console.error(e instanceof BenchUsageError ? e.message : `bench: ${e.message}`);
  process.exit(e instanceof BenchUsageError ? 2 : 1);
});

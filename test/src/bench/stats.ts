// The bench's pure parts: medians, the order tools run in, ratios, tables, its options. Unit-tested
// (test/src/unit/bench.test.ts) so a broken bench fails CI, though the bench itself is not a test.

/** One timed command: wall time start to exit, and its peak RSS (wait4's ru_maxrss). */
export interface Sample {
  seconds: number;
  peakRssKb: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of no values');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The median time of the rounds, with the largest peak RSS any round reached. */
export function summarize(samples: readonly Sample[]): Sample {
  return { seconds: median(samples.map((x) => x.seconds)), peakRssKb: Math.max(...samples.map((x) => x.peakRssKb)) };
}

/**
 * The order of a comparison: round by round, every tool once per round in the order given
 * (amber, CRIU, amber, CRIU ...), so a machine that slows down or speeds up during the run
 * weighs on both tools alike.
 */
export function alternation<T>(tools: readonly T[], rounds: number): { round: number; tool: T }[] {
  const order: { round: number; tool: T }[] = [];
  for (let round = 0; round < rounds; round++) for (const tool of tools) order.push({ round, tool });
  return order;
}

/** a / b with two decimals, or '-' when either is missing. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return '-';
  return (a / b).toFixed(2);
}

export function formatTable(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  for (const r of rows) if (r.length !== head.length) throw new Error(`table row has ${r.length} cells, the head ${head.length}`);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

/** A row of the comparison: what was measured, each tool's summary, or why a tool has none. */
export interface ComparisonRow {
  what: string;
  amber?: Sample;
  criu?: Sample;
  /** Why CRIU has no figure here (it refused, or none was given). */
  criuNote?: string;
}

export const COMPARISON_HEAD = ['', 'amber s', 'CRIU s', 'amber / CRIU', 'amber peak RSS', 'CRIU peak RSS'];

const seconds = (s: Sample | undefined) => (s ? s.seconds.toFixed(3) : '-');
const rss = (s: Sample | undefined) => (s ? `${(s.peakRssKb / 1024).toFixed(0)} MB` : '-');

export function comparisonCells(row: ComparisonRow): string[] {
  return [
    row.what,
    seconds(row.amber),
    row.criu ? seconds(row.criu) : row.criuNote ?? '-',
    ratio(row.amber?.seconds, row.criu?.seconds),
    rss(row.amber),
    rss(row.criu),
  ];
}

/**
 * Long notes ("refused: Error (criu/config.c...) ...") out of the cells: each distinct note becomes
 * "n/a [k]" in the row, and the k-th footnote.
 */
export function footnoted(rows: readonly ComparisonRow[]): { rows: ComparisonRow[]; notes: string[] } {
  const notes: string[] = [];
  const out = rows.map((r) => {
    if (r.criu || r.criuNote === undefined || r.criuNote.length <= 12) return r;
    let k = notes.indexOf(r.criuNote);
    if (k < 0) k = notes.push(r.criuNote) - 1;
    return { ...r, criuNote: `n/a [${k + 1}]` };
  });
  return { rows: out, notes: notes.map((n, i) => `[${i + 1}] CRIU ${n}`) };
}

export const SCENARIOS = ['startup', 'memory', 'tree', 'threads', 'incremental', 'paths'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/** `paths` (amber's own data paths against each other) only when asked for. */
const DEFAULT_SCENARIOS: readonly Scenario[] = ['startup', 'memory', 'tree', 'threads', 'incremental'];

export interface BenchOptions {
  scenarios: Scenario[];
  rounds: number;
  /** Sizes of the memory scenario, MiB. */
  sizesMb: number[];
  /** Size of the incremental scenario, MiB. */
  incrementalMb: number;
  /** Profile amber's per-task work on the tree instead of comparing. */
  profile: boolean;
  /** Where the image directories are made: tmpfs by default, a disk filesystem with --images-in. */
  imagesIn: string;
}

export class BenchUsageError extends Error {}

const USAGE =
  'usage: npm run bench -- [--only SCENARIO,...] [--rounds N] [--sizes MiB,...] [--incremental-size MiB] [--images-in DIR] [--profile]\n' +
  `  scenarios: ${SCENARIOS.join(', ')} (default: all but paths); CRIU_BIN=/path/to/criu compares CRIU 4.x\n` +
  '  --images-in: an existing directory the image directories are made in (default /dev/shm, tmpfs)';

function positiveInts(flag: string, text: string | undefined): number[] {
  const xs = (text ?? '').split(',').map((x) => Number(x));
  if (!text || xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new BenchUsageError(`bench: ${flag} takes positive whole numbers, not '${text ?? ''}'\n${USAGE}`);
  return xs;
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = { scenarios: [...DEFAULT_SCENARIOS], rounds: 3, sizesMb: [256, 1024, 4096], incrementalMb: 1024, profile: false, imagesIn: '/dev/shm' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i];
    switch (flag) {
      case '--only': {
        const names = (value() ?? '').split(',');
        const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
        if (unknown.length) throw new BenchUsageError(`bench: no scenario '${unknown.join(',')}'\n${USAGE}`);
        o.scenarios = names as Scenario[];
        break;
      }
      case '--rounds':
        [o.rounds] = positiveInts(flag, value());
        break;
      case '--sizes':
        o.sizesMb = positiveInts(flag, value());
        break;
      case '--incremental-size':
        [o.incrementalMb] = positiveInts(flag, value());
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--images-in': {
        const dir = value();
        if (!dir || !dir.startsWith('/')) throw new BenchUsageError(`bench: --images-in takes an absolute directory, not '${dir ?? ''}'\n${USAGE}`);
        o.imagesIn = dir;
        break;
      }
      case '--help':
        throw new BenchUsageError(USAGE);
      default:
        throw new BenchUsageError(`bench: unknown option '${flag}'\n${USAGE}`);
    }
  }
  return o;
}

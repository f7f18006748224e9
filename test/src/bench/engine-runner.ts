// Runs one amber engine operation in its own process and prints {seconds, maxRssKb, ...} as JSON,
// so the benchmark sees amber's own peak RSS, not the harness's.
import { readFileSync } from 'node:fs';
import { dump, preDump, restore, PluginRegistry, streamLogger } from '@amber/core';

async function main(): Promise<void> {
  const [op, a, b, c] = process.argv.slice(2);
  const registry = PluginRegistry.discover({ builtins: ['@amber/plugin-mm', '@amber/plugin-fs'], requireFn: require });
  const log = streamLogger((l) => process.stderr.write(l + '\n'), process.env.AMBER_BENCH_VERBOSE === '1');
  const t0 = performance.now();
  const report =
    op === 'dump'
      ? await dump({ pid: Number(a), imagesDir: b, prevImagesDir: c, trackMem: c !== undefined, log }, registry)
      : op === 'pre-dump'
        ? await preDump({ pid: Number(a), imagesDir: b, log }, registry)
        : await restore({ imagesDir: a, detached: true, log }, registry);
  const seconds = (performance.now() - t0) / 1000;
  // VmHWM, not ru_maxrss: a forked child inherits its parent's ru_maxrss across exec.
  const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  process.stdout.write(JSON.stringify({ seconds, maxRssKb: Number(hwm?.[1] ?? 0), report }) + '\n');
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});

// Where amber's per-task time goes, for the 50 x 4 tree: `npm run bench -- --profile`.
// Dump and restore run once under node's --cpu-prof (V8 samples the JS stack even while a
// synchronous FFI call blocks in the kernel, so waits land on their caller), and once under
// strace of amber's main thread only (the one that ptraces: DESIGN §5) for syscall counts. Or
// summarise profiles already made: `node test/dist/bench/profile.js FILE.cpuprofile...`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, cliEntry, descendants, reap, startTarget, verdict } from '../harness';
import { formatTable } from './stats';
import { amberTool } from './tools';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** From the leaf up, the first frame matching decides (after the two checked on the whole stack). */
const FILE_CATEGORIES: [RegExp, string][] = [
  [/core\/dist\/ptrace\//, 'seize, freeze, regs, waits (core/ptrace)'],
  [/core\/dist\/task\/proc\.js$/, '/proc reads (core/task/proc)'],
  [/core\/dist\/images\/|node_modules\/(protobufjs|@protobufjs)\//, 'images: encode + write (core/images, protobufjs)'],
  [/core\/dist\/task\//, 'task state (core/task)'],
  [/core\/dist\/(engine|objects)\//, 'engine (core/engine, core/objects)'],
  [/plugins\/([^/]+)\/dist\//, 'plugin $1'],
  [/cli\/(dist|bin)\//, 'cli'],
  [/node_modules\/(@[^/]+\/[^/]+|[^/]+)\//, 'dependency $1'],
];

const KERNEL = /core\/dist\/kernel\//;
const INJECTION = /core\/dist\/ptrace\/remote-(syscall|calls)\.js$/;

function category(stack: CallFrame[]): string {
  if (stack.some((f) => f.url.startsWith('node:internal/modules/') || f.url.endsWith('cli/bin/code-cache.js'))) return 'module loading (start-up)';
  // an injected syscall's stops and waits are in core/ptrace's tracee and wait: they count here
  if (stack.some((f) => INJECTION.test(f.url))) return 'injected syscalls (core/ptrace/remote-*, with their stops)';
  // core/kernel is the door every syscall goes through: its caller says what the call was for
  for (const f of stack) {
    for (const [re, name] of FILE_CATEGORIES) {
      const m = re.exec(f.url);
      if (m) return name.replace('$1', m[1] ?? '');
    }
  }
  if (stack.some((f) => KERNEL.test(f.url))) return 'kernel calls (core/kernel) from elsewhere';
  const leaf = stack[0]?.functionName ?? '';
  if (leaf === '(garbage collector)') return 'GC';
  if (leaf === '(idle)') return 'idle';
  return leaf === '(program)' ? 'node itself (program)' : `other: ${leaf || '?'}`;
}

export interface ProfileSummary {
  totalMs: number;
  byCategory: Map<string, number>;
  /** of byCategory, the time inside a call through core/kernel (the syscall and its FFI) */
  inKernelCalls: Map<string, number>;
  /** self time of the leaf-most frame of amber's or a dependency's own code */
  byFunction: Map<string, number>;
}

export function summarizeProfile(p: CpuProfile): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = (id: number): CallFrame[] => {
    const out: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) out.push(byId.get(at)!.callFrame);
    return out;
  };
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inKernelCalls = new Map<string, number>();
  const cache = new Map<number, [string, string, boolean]>();
  let totalMs = 0;
  p.samples.forEach((id, i) => {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    let hit = cache.get(id);
    if (!hit) {
      const stack = stackOf(id);
      const own = stack.find((f) => /\/(core|plugins\/[^/]+|cli)\/dist\//.test(f.url) && !KERNEL.test(f.url)) ?? stack[0];
      const file = own.url.replace(/^file:\/\//, '').replace(/^.*\/(core|plugins\/[^/]+|cli)\/dist\//, '$1/');
      hit = [category(stack), `${own.functionName || '(anonymous)'} ${file}:${own.lineNumber + 1}`, stack.some((f) => KERNEL.test(f.url))];
      cache.set(id, hit);
    }
    byCategory.set(hit[0], (byCategory.get(hit[0]) ?? 0) + ms);
    byFunction.set(hit[1], (byFunction.get(hit[1]) ?? 0) + ms);
    if (hit[2]) inKernelCalls.set(hit[0], (inKernelCalls.get(hit[0]) ?? 0) + ms);
  });
  return { totalMs, byCategory, inKernelCalls, byFunction };
}

/** strace -o text: count per syscall, ptrace counted per request. */
export function countSyscalls(trace: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of trace.split('\n')) {
    const m = /^(?:\d+\s+)?(\w+)\((PTRACE_\w+)?/.exec(line);
    if (!m) continue;
    const key = m[1] === 'ptrace' && m[2] ? `ptrace ${m[2]}` : m[1];
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

const top = <K>(m: Map<K, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);

function printProfile(what: string, s: ProfileSummary, tasks: { procs: number; threads: number }, wallS?: number): void {
  const threads = tasks.procs * tasks.threads;
  console.log(`\n${what}: ${wallS !== undefined ? `whole command ${wallS.toFixed(3)} s, ` : ''}profiled ${(s.totalMs / 1000).toFixed(3)} s; per process of ${tasks.procs}, per thread of ${threads}`);
  const rows = top(s.byCategory, 14).map(([c, ms]) => [c, ms.toFixed(0), (ms / tasks.procs).toFixed(2), (ms / threads).toFixed(2), `${((ms / s.totalMs) * 100).toFixed(0)}%`, (s.inKernelCalls.get(c) ?? 0).toFixed(0)]);
  for (const l of formatTable(['', 'ms', 'ms/process', 'ms/thread', 'share', 'of which in syscalls ms'], rows)) console.log(`  ${l}`);
  console.log('  leaf-most amber functions above core/kernel (self + the syscalls they make):');
  for (const l of formatTable(['', 'ms'], top(s.byFunction, 15).map(([f, ms]) => [f, ms.toFixed(0)]))) console.log(`    ${l}`);
}

function printSyscalls(what: string, counts: Map<string, number>, tasks: { procs: number; threads: number }): void {
  const threads = tasks.procs * tasks.threads;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`\n${what}: ${total} syscalls by amber's main thread (strace), per process / per thread:`);
  const rows = top(counts, 25).map(([k, n]) => [k, String(n), (n / tasks.procs).toFixed(1), (n / threads).toFixed(1)]);
  for (const l of formatTable(['', 'count', '/process', '/thread'], rows)) console.log(`  ${l}`);
}

function readProfile(dir: string): CpuProfile {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`bench: expected one .cpuprofile in ${dir}, found ${files.length}`);
  return JSON.parse(readFileSync(join(dir, files[0]), 'utf8')) as CpuProfile;
}

function straced(args: string[], out: string): void {
  const r = spawnSync('strace', ['-qq', '-e', 'signal=none', '-o', out, process.execPath, cliEntry, ...args], {
    encoding: 'utf8', timeout: 600_000, killSignal: 'SIGKILL', env: { ...process.env, ...MODULES },
  });
  if (r.status !== 0) throw new Error(`bench: strace amber ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`);
}

/** Runs amber from tsc's modules (cli/bin/entry.js), whose paths name what each frame is. */
const MODULES = { AMBER_BUNDLE: '0' };

export async function profileTree(procs = 50, threads = 4): Promise<void> {
  const work = mkdtempSync('/dev/shm/amber-bench-profile-');
  const tasks = { procs, threads };
  try {
    const images = join(work, 'images');
    // 1. cpu profiles
    // tsc's modules, not the one-file build: the split by file needs each module's own path
    const prof = (phase: string) => amberTool({ nodeFlags: ['--cpu-prof', '--cpu-prof-interval', '200', '--cpu-prof-dir', join(work, phase)], env: MODULES });
    let target = await startTarget('forest', [String(procs), String(threads)], { timeoutMs: 60_000 });
    let pids = descendants(target.pid);
    const dump = prof('dump').dump(target.pid, images);
    for (const pid of pids) await reap(pid, 60_000);
    const restore = prof('restore').restore(images);
    let v = await verdict(target, 60_000);
    if (!v.passed) throw new Error(`forest did not verify after the profiled restore: ${v.lines.join(' | ')}`);
    await cleanup();
    console.log("\n(amber runs from tsc's modules here, AMBER_BUNDLE=0: module loading is theirs, not the one-file build's)");
    printProfile('dump, --cpu-prof', summarizeProfile(readProfile(join(work, 'dump'))), tasks, dump.seconds);
    printProfile('restore, --cpu-prof', summarizeProfile(readProfile(join(work, 'restore'))), tasks, restore.seconds);
    // 2. syscall counts
    rmSync(images, { recursive: true, force: true });
    target = await startTarget('forest', [String(procs), String(threads)], { timeoutMs: 60_000 });
    pids = descendants(target.pid);
    straced(['dump', '-t', String(target.pid), '-D', images], join(work, 'dump.strace'));
    for (const pid of pids) await reap(pid, 60_000);
    straced(['restore', '-D', images, '-d'], join(work, 'restore.strace'));
    v = await verdict(target, 60_000);
    if (!v.passed) throw new Error(`forest did not verify after the straced restore: ${v.lines.join(' | ')}`);
    printSyscalls('dump', countSyscalls(readFileSync(join(work, 'dump.strace'), 'utf8')), tasks);
    printSyscalls('restore', countSyscalls(readFileSync(join(work, 'restore.strace'), 'utf8')), tasks);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await cleanup();
  }
}

if (require.main === module) {
  for (const f of process.argv.slice(2)) printProfile(f, summarizeProfile(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile), { procs: 50, threads: 4 });
}

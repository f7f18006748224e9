import { writeFileSync } from 'node:fs';
import { RESTORE_PHASES, type FileDescription, type ResourcePlugin, type RestoreContext, type RestoreOptions, type RestorePhase, type RestoreTask } from './plugin';
import { RSEQ_FLAG_UNREGISTER, SIG, SYS } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { kill } from '../kernel/syscalls';
import { ImageStore } from '../images';
import { BusyPidError, describeHolder, pidHolder, TaskCreator } from '../task/creator';
import { registersOf, restoreTaskState, threadInfoOf } from '../task/task-state';
import type { CoreEntry, PstreeEntry, TaskKobjIdsEntry } from '../images';
import { FdTable } from './fd-table';
import { FileRegistry } from './files';
import { faultPoint } from './fault';
import { silentLogger } from './logger';
import type { PluginRegistry } from './registry';
import { waitForExit } from './wait-exit';

export interface RestoreReport {
  rootPid: number;
  pids: number[];
  seconds: number;
  exitCode?: number;
}

export class IncompleteImageError extends AmberError {}

/** Brings a dumped tree back, with its pids, and lets it run. */
export async function restore(options: RestoreOptions, registry: PluginRegistry): Promise<RestoreReport> {
  const started = performance.now();
  const log = options.log ?? silentLogger;
  const store = ImageStore.forRead(options.imagesDir);
  const inventory = store.readInventory();
  const plugins = selectPlugins(registry, inventory.amberPlugins ?? [], options.skip ?? []);
  const fdTable = new FdTable(plugins.flatMap((p) => p.fileKinds ?? []));
  const withFds = plugins.some((p) => p.fileKinds?.length);

  const pstree = store.read<PstreeEntry>('pstree', 'pstree').entries;
  const cores = new Map<number, CoreEntry>();
  for (const e of pstree) {
    if (e.threads.length > 1) throw new AmberError(`pid ${e.pid} had ${e.threads.length} threads; multi-threaded restore is not supported yet`);
    cores.set(e.pid, store.read<CoreEntry>('core', `core-${e.pid}`).entries[0]);
    const holder = pidHolder(e.pid);
    if (holder && holder.state !== 'Z') throw new BusyPidError(e.pid, describeHolder(e.pid));
  }
  const avoid = pstree.flatMap((e) => plugins.flatMap((p) => p.addressRanges?.(store, e.pid) ?? []));

  const creator = new TaskCreator(avoid);
  const tasks: RestoreTask[] = [];
  const files = new FileRegistry(store.has('files') ? store.read<FileDescription>('files', 'files').entries : []);
  const ctx: RestoreContext = { options, store, tasks, log, files, reserved: () => [rangeOf(creator.scratch)] };
  try {
    for (const phase of RESTORE_PHASES) {
      const t0 = performance.now();
      if (phase === 'tree') createTree(creator, pstree, tasks, store);
      if (phase === 'resources' && withFds) for (const t of tasks) fdTable.restore(ctx, t);
      for (const p of plugins) if (p.phase === phase && p.restore) await p.restore(ctx);
      if (phase === 'task-state') for (const t of tasks) restoreTaskState(t.remote, cores.get(t.pid)!);
      faultPoint(`restore:${phase}`);
      if (phase === 'resume') resumeAll(tasks, cores);
      log.debug(`phase ${phase}: ${(performance.now() - t0).toFixed(1)} ms`);
    }
  } catch (e) {
    for (const t of tasks) {
      try {
        kill(t.pid, SIG.KILL);
      } catch {
        // already gone
      }
    }
    creator.dispose();
    throw e;
  }
  creator.dispose();
  const rootPid = pstree[0].pid;
  if (options.pidfile) writeFileSync(options.pidfile, `${rootPid}\n`);
  const report: RestoreReport = { rootPid, pids: tasks.map((t) => t.pid), seconds: (performance.now() - started) / 1000 };
  if (!options.detached) await waitForExit(rootPid);
  return report;
}

function selectPlugins(registry: PluginRegistry, dumped: string[], skip: string[]): ResourcePlugin[] {
  const missing = dumped.filter((n) => !registry.get(n) && !skip.includes(n));
  if (missing.length) {
    throw new IncompleteImageError(`the images need plugin(s) ${missing.join(', ')}, which are not installed (or --skip them)`);
  }
  const all = registry.select(undefined, skip.filter((n) => registry.get(n)));
  const absent = all.filter((p) => dumped.length && !dumped.includes(p.name) && p.restore);
  if (absent.length && !absent.every((p) => skip.includes(p.name))) {
    throw new IncompleteImageError(
      `this is a partial dump without ${absent.map((p) => p.name).join(', ')}; restoring it would lose those resources ` +
        `(pass --skip ${absent.map((p) => p.name).join(',')} to restore anyway)`,
    );
  }
  return all.filter((p) => dumped.length === 0 || dumped.includes(p.name));
}

function createTree(creator: TaskCreator, pstree: PstreeEntry[], tasks: RestoreTask[], store: ImageStore): void {
  for (const e of pstree) {
    const created = creator.createProcess(e.pid);
    const ids = store.read<RestoreTask['ids']>('ids', `ids-${e.pid}`).entries[0];
    const task: RestoreTask = { pid: e.pid, tracee: created.tracee, remote: created.remote, ids };
    tasks.push(task);
    const remote = created.remote;
    // The helper's rseq area is about to be unmapped; a registered one would then fault.
    const rseq = created.tracee.getRseqConfig();
    if (rseq.pointer) remote.call('rseq unregister', SYS.rseq, [rseq.pointer, rseq.size, RSEQ_FLAG_UNREGISTER, rseq.signature]);
    remote.call('close_range', SYS.close_range, [0, 0xffffffff, 0]);
    if (e.sid === e.pid) remote.call('setsid', SYS.setsid, []);
    else if (e.pgid === e.pid) remote.call('setpgid', SYS.setpgid, [0, 0]);
  }
}

function resumeAll(tasks: RestoreTask[], cores: Map<number, CoreEntry>): void {
  for (const t of tasks) {
    const core = cores.get(t.pid)!;
    t.remote.finish(registersOf(core), 'new-task');
    const xsave = threadInfoOf(core).xsaveRaw;
    if (xsave) t.tracee.setXstate(xsave);
    t.tracee.setSigmask(core.threadCore?.blkSigset ?? 0n);
  }
  for (const t of tasks) t.tracee.detach();
}

function rangeOf(s: { base: bigint; size: number }) {
  return { start: s.base, end: s.base + BigInt(s.size) };
}

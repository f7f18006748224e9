import { readFileSync } from 'node:fs';
import { SIG } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { kcmpIdsOf } from './ids';
import { kill } from '../kernel/syscalls';
import { ImageStore } from '../images';
import { SharedObjects } from '../objects/shared-objects';
import { RemoteSyscall } from '../ptrace/remote-syscall';
import { readMaps, readStat } from '../task/proc';
import { buildCoreEntry, snapshotThread, type ThreadSnapshot } from '../task/task-state';
import { IMG_VERSION_V1_1, type CoreEntry, type InventoryEntry } from '../images';
import { freezeTree, type FrozenTask } from '../task/tree';
import { collectFds, FdTable } from './fd-table';
import { faultPoint } from './fault';
import { FileRegistry } from './files';
import { silentLogger } from './logger';
import type { DumpContext, DumpOptions, DumpTask, ResourcePlugin } from './plugin';
import type { PluginRegistry } from './registry';

export class NotSupportedError extends AmberError {}

export interface DumpReport {
  pids: number[];
  imagesDir: string;
  seconds: number;
  counters: Record<string, number>;
}

const ALL_SIGNALS = 0xffffffffffffffffn;

/** Checkpoints a process tree into an image directory. */
export async function dump(options: DumpOptions, registry: PluginRegistry): Promise<DumpReport> {
  const started = performance.now();
  const log = options.log ?? silentLogger;
  const plugins = registry.select(options.only, options.skip);
  const fdTable = new FdTable(plugins.flatMap((p) => p.fileKinds ?? []));
  const withFds = plugins.some((p) => p.fileKinds?.length);
  const store = ImageStore.forDump(options.imagesDir);
  const counters: Record<string, number> = {};

  const frozen = freezeTree(options.pid);
  log.debug(`froze ${frozen.length} task(s): ${frozen.map((t) => `${t.pid}[${[...t.tracees.keys()].join(',')}]`).join(' ')}`);
  const snapshots = new Map<number, ThreadSnapshot>();
  const tasks: DumpTask[] = [];
  let succeeded = false;
  try {
    refuseUnsupported(frozen);
    const objects = new SharedObjects();
    for (const f of frozen) {
      const tracee = f.tracees.get(f.pid)!;
      const stat = readStat(f.pid);
      const maps = readMaps(f.pid);
      const fds = withFds ? collectFds(f.pid) : [];
      const snap = snapshotThread(tracee);
      snapshots.set(f.pid, snap);
      // Signals stay blocked while we inject, so no handler runs on our scratch registers.
      tracee.setSigmask(ALL_SIGNALS);
      const remote = RemoteSyscall.bootstrap(tracee);
      tasks.push({ pid: f.pid, threads: [...f.tracees.keys()], stat, maps, tracee, remote, fds, ids: kcmpIdsOf(objects, f.pid) });
    }
    fdTable.check(tasks);
    faultPoint('dump:after-seize');

    const ctx: DumpContext = {
      options, store, objects, tasks, log, files: new FileRegistry(),
      count: (what, n) => void (counters[what] = (counters[what] ?? 0) + n),
    };
    const cores = new Map<number, CoreEntry>();
    for (const t of tasks) cores.set(t.pid, buildCoreEntry(snapshots.get(t.pid)!, t.tracee, t.remote, t.stat, true));

    for (const p of plugins) {
      if (!p.dump) continue;
      const t0 = performance.now();
      await p.dump(ctx);
      log.debug(`plugin ${p.name}: dumped in ${(performance.now() - t0).toFixed(1)} ms`);
      faultPoint(`dump:after-${p.name}`);
    }
    if (withFds) fdTable.dump(ctx);
    store.write('files', 'files', ctx.files.entries());

    writeTaskImages(ctx, cores);
    store.writeInventory(inventoryOf(tasks[0], plugins));
    succeeded = true;
  } finally {
    finishDump(frozen, tasks, snapshots, succeeded && !options.leaveRunning, log);
  }
  return { pids: tasks.map((t) => t.pid), imagesDir: options.imagesDir, seconds: (performance.now() - started) / 1000, counters };
}

function refuseUnsupported(frozen: FrozenTask[]): void {
  if (frozen.length > 1) {
    throw new NotSupportedError(`pid ${frozen[0].pid} has child processes (${frozen.slice(1).map((t) => t.pid).join(', ')}); process trees are not supported yet`);
  }
  for (const f of frozen) {
    if (f.tracees.size > 1) throw new NotSupportedError(`pid ${f.pid} has ${f.tracees.size} threads; multi-threaded processes are not supported yet`);
  }
}

function writeTaskImages(ctx: DumpContext, cores: Map<number, CoreEntry>): void {
  const pstree = ctx.tasks.map((t) => ({
    pid: t.pid,
    ppid: t.stat.ppid,
    pgid: t.stat.pgrp,
    sid: t.stat.session,
    threads: t.threads,
  }));
  ctx.store.write('pstree', 'pstree', pstree);
  for (const t of ctx.tasks) {
    ctx.store.write('core', `core-${t.pid}`, [cores.get(t.pid)!]);
    ctx.store.write('ids', `ids-${t.pid}`, [t.ids]);
  }
}

function inventoryOf(root: DumpTask, plugins: ResourcePlugin[]): InventoryEntry {
  return {
    imgVersion: IMG_VERSION_V1_1,
    fdinfoPerId: true,
    rootIds: root.ids,
    nsPerId: true,
    amberPlugins: plugins.map((p) => p.name),
    dumpUptime: BigInt(Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e6)),
  };
}

/**
 * Ends a dump: kills the tree after a complete dump, otherwise (failure or --leave-running) puts
 * every task back exactly as it was and lets it go.
 */
function finishDump(frozen: FrozenTask[], tasks: DumpTask[], snaps: Map<number, ThreadSnapshot>, kill_: boolean, log: { warn(m: string): void }): void {
  for (const f of frozen) {
    const task = tasks.find((t) => t.pid === f.pid);
    const snap = snaps.get(f.pid);
    const main = f.tracees.get(f.pid)!;
    if (kill_) {
      try {
        kill(f.pid, SIG.KILL);
      } catch (e) {
        log.warn(`could not kill pid ${f.pid}: ${(e as Error).message}`);
      }
      continue;
    }
    try {
      if (task && snap) task.remote.finish(snap.regs, 'same-task');
      else if (snap) main.setRegs(snap.regs);
      if (snap) main.setSigmask(snap.sigmask);
    } catch (e) {
      log.warn(`pid ${f.pid}: could not undo amber's changes cleanly: ${(e as Error).message}`);
      if (snap) {
        try {
          main.setRegs(snap.regs);
          main.setSigmask(snap.sigmask);
        } catch {
          // the task is gone
        }
      }
    }
    for (const t of f.tracees.values()) t.detachQuietly();
  }
}

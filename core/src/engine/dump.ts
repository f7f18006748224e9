import { readFileSync } from 'node:fs';
import { PTRACE_O, SIG } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { kill } from '../kernel/syscalls';
import { ImageStore, IMG_VERSION_V1_1, type CoreEntry, type InventoryEntry, type PstreeEntry, type ToWrite } from '../images';
import { SharedObjects } from '../objects/shared-objects';
import { asInterruption, checkpoint, InterruptedError, InterruptGuard } from '../ptrace/interrupt';
import { frameSlotSize } from '../ptrace/park';
import { RemoteSyscall } from '../ptrace/remote-syscall';
import type { Tracee } from '../ptrace/tracee';
import type { SigreturnCodeCache } from '../ptrace/task-places';
import { together } from '../ptrace/together';
import { identifyRestart } from '../ptrace/restart-block';
import { TaskGoneError } from '../ptrace/errors';
import { threadExitsWithin, threadHasExited } from '../ptrace/wait';
import { readMaps, readStat, type ProcStat } from '../task/proc';
import { snapshotThread, startCoreEntry, type ThreadSnapshot } from '../task/task-state';
import { freezeTree, type FrozenTask } from '../task/tree';
import { checkLeadersInside } from '../task/leaders';
import { suspendSeccompOption } from '../task/capabilities';
import { SeccompTable } from '../task/seccomp';
import { zombieCore } from '../task/zombie';
import { collectFds, FdTable } from './fd-table';
import { faultPoint } from './fault';
import { FileRegistry } from './files';
import { kcmpIdsOf } from './ids';
import { linkParent } from './image-parent';
import { lockPid } from './pid-lock';
import { MappingKinds } from './mapping-kinds';
import { RunState } from './run-state';
import { DumpedInodes } from './inodes';
import { silentLogger, uptimeMs, type Logger } from './logger';
import type { DumpContext, DumpOptions, DumpTask, ResourcePlugin } from './plugin';
import type { PluginRegistry } from './registry';
import { DUMPED_INODES, FILE_REGISTRY, IMAGE_STORE, LOGGER, SHARED_OBJECTS } from './services';

export class NotSupportedError extends AmberError {}

export interface DumpReport {
  pids: number[];
  imagesDir: string;
  seconds: number;
  counters: Record<string, number>;
}

const ALL_SIGNALS = 0xffffffffffffffffn;

/** Per thread: how it was before amber touched it, and the handle to inject into it. */
interface ThreadHold {
  snap: ThreadSnapshot;
  remote?: RemoteSyscall;
}

/**
 * Checkpoints a process tree into an image directory. SIGINT, SIGTERM, SIGHUP and SIGQUIT to
 * amber meanwhile end it as a failure does: the tree is put back as it was.
 */
export async function dump(options: DumpOptions, registry: PluginRegistry): Promise<DumpReport> {
  return InterruptGuard.around(async (guard) => {
    try {
      const plugins = registry.select(options.only, options.skip);
      const lock = lockPid(options.pid);
      try {
        const store = ImageStore.forDump(options.imagesDir);
        try {
          return await dumpInto(store, { ...options, imagesDir: store.dir }, plugins, guard, registry);
        } catch (e) {
          // Whatever failed (or interrupted) the dump: what it wrote goes, what was there stays.
          for (const problem of store.discard()) (options.log ?? silentLogger).warn(`could not remove ${problem}`);
          throw e;
        }
      } finally {
        lock.release();
      }
    } catch (err) {
      const e = asInterruption(err, guard);
      throw e instanceof InterruptedError ? e.withOutcome(`pid ${options.pid} left running as it was`) : e;
    }
  });
}

async function dumpInto(store: ImageStore, options: DumpOptions, selected: ResourcePlugin[], guard: InterruptGuard, registry: PluginRegistry): Promise<DumpReport> {
  const started = uptimeMs();
  const log = options.log ?? silentLogger;
  const [objects, files, inodes] = [new SharedObjects(), new FileRegistry(), new DumpedInodes()];
  // this dump's own plugin instances, given its services (engine/services.ts)
  const plugins = registry.forRun(selected, { [IMAGE_STORE]: store, [LOGGER]: log, [SHARED_OBJECTS]: objects, [FILE_REGISTRY]: files, [DUMPED_INODES]: inodes }, 'in a dump');
  const fdTable = new FdTable(plugins);
  // a pre-dump is memory only, whatever else its plugins own (predump.ts brings mapping owners)
  const withFds = !options.preDump && plugins.some((p) => p.fileKinds?.length);
  const counters: Record<string, number> = {};

  // TRACESYSGOOD: see isSyscallStop (a parked thread must survive amber's death).
  const frozen = freezeTree(options.pid, suspendSeccompOption() | PTRACE_O.TRACESYSGOOD, options.freezeTimeoutMs);
  log.debug(`froze ${frozen.length} task(s): ${frozen.map((t) => `${t.pid}[${[...t.tracees.keys()].join(',')}]${t.zombie ? 'Z' : ''}`).join(' ')}`);
  const holds = new Map<number, ThreadHold>();
  const tasks: DumpTask[] = [];
  const stats = new Map<number, ProcStat>();
  let succeeded = false;
  let ctx: DumpContext | undefined;
  try {
    const runState = new RunState();
    let pagesIds = 0;
    for (const f of frozen) stats.set(f.pid, readStat(f.pid));
    if (!options.preDump) checkLeadersInside(stats.values(), options.pid, options.shellJob);
    // Each process's scratch area is mapped by one injected mmap: every process is started on
    // its own before the first is waited for, so that their round trips overlap.
    together(frozen.filter((f) => !f.zombie), (f) => {
      const leader = f.tracees.get(f.pid)!;
      const maps = readMaps(f.pid);
      const fds = withFds ? collectFds(f.pid, plugins) : [];
      for (const tracee of f.tracees.values()) holds.set(tracee.tid, { snap: snapshotThread(tracee) });
      // Each thread is parked (ptrace/park.ts), then all its signals are blocked while we inject,
      // so no handler runs on our registers: amber's death lets it put itself back, mask included.
      const threads = [...f.tracees.values()];
      const slot = frameSlotSize(Math.max(...threads.map((t) => holds.get(t.tid)!.snap.xstate.length)));
      const mapped = RemoteSyscall.beginBootstrap(leader, 0n, { count: threads.length, slot }, holds.get(leader.tid)!.snap, maps);
      return () => {
        const remote = mapped();
        holds.get(leader.tid)!.remote = remote;
        parkThreads(f.pid, threads, remote, holds, log);
        tasks.push({
          pid: f.pid, threads: [...f.tracees.keys()], stat: stats.get(f.pid)!, maps, tracee: leader, remote, fds,
          ids: kcmpIdsOf(objects, f.pid),
        });
      };
    });
    fdTable.check(tasks);
    log.debug(`parked ${holds.size} thread(s)`);
    faultPoint('dump:after-seize');

    ctx = {
      options, store, objects, tasks, log, files,
      count: (what, n) => void (counters[what] = (counters[what] ?? 0) + n),
      state: (key, init) => runState.get(key, init),
      inodes,
      createPages: (data) => ({ pagesId: ++pagesIds, path: store.createPages(pagesIds, data) }),
      describeFile: (holder, pid, fd) => fdTable.describeFile(ctx!, holder, pid, fd),
      mappings: new MappingKinds(plugins),
    };
    const seccomp = new SeccompTable();
    const cores = coreEntries(frozen, holds, stats, seccomp);
    log.debug(`core entries of ${cores.size} thread(s) read`);
    faultPoint('dump:after-cores');

    for (const p of plugins) {
      if (!p.dump) continue;
      const t0 = uptimeMs();
      await p.dump(ctx);
      log.debug(`plugin ${p.name}: dumped in ${(uptimeMs() - t0).toFixed(1)} ms`);
      faultPoint(`dump:after-${p.name}`);
      checkpoint();
    }
    if (withFds) fdTable.dump(ctx);
    store.write('files', 'files', ctx.files.entries());

    writeTaskImages(ctx, frozen, stats, cores);
    if (seccomp.filters.length) store.write('seccomp', 'seccomp', [seccomp.entry()]);
    if (options.prevImagesDir) linkParent(store, options.prevImagesDir);
    checkpoint();
    faultPoint('dump:before-inventory');
    store.writeInventory(inventoryOf(kcmpIdsOf(objects, process.pid), plugins));
    succeeded = true;
    // The images are complete whatever happens now: a plugin that cannot finish says so.
    for (const p of plugins) await p.afterDump?.(ctx, true).catch((err: Error) => log.warn(`plugin ${p.name}: ${err.message}`));
  } catch (e) {
    if (ctx) for (const p of plugins) await p.afterDump?.(ctx, false).catch((err: Error) => log.warn(`plugin ${p.name}: ${err.message}`));
    throw deathInstead(e, frozen);
  } finally {
    guard.hold();
    finishDump(frozen, holds, succeeded && !options.leaveRunning, log);
  }
  counters.tasks = frozen.length;
  counters.threads = frozen.reduce((n, f) => n + f.tracees.size, 0);
  return { pids: frozen.map((t) => t.pid), imagesDir: options.imagesDir, seconds: (uptimeMs() - started) / 1000, counters };
}

/**
 * The threads other than the leader (the tracee of `remote`, parked in slot 0 by its bootstrap)
 * parked in the slots of its scratch area; then a thread inside restart_syscall has its restart
 * found out, and is parked again on the registers that say which syscall to restart.
 */
function parkThreads(pid: number, threads: Tracee[], remote: RemoteSyscall, holds: Map<number, ThreadHold>, log: Logger): void {
  threads.forEach((tracee, i) => {
    if (tracee === remote.tracee) return;
    const h = holds.get(tracee.tid)!;
    h.remote = RemoteSyscall.inherit(tracee, remote.scratch, true, h.snap.regs, remote);
    h.remote.park(i, h.snap.regs, h.snap.xstate, h.snap.sigmask);
    tracee.setSigmask(ALL_SIGNALS);
  });
  threads.forEach((tracee, i) => {
    const h = holds.get(tracee.tid)!;
    const restart = identifyRestart(h.remote!, h.snap.regs);
    if (restart.unknown) log.warn(`pid ${pid} thread ${tracee.tid} is in restart_syscall, whose syscall amber cannot read here (/proc/TID/stack): after a restore the call returns EINTR`);
    if (restart.regs === h.snap.regs) return;
    h.snap.regs = restart.regs;
    h.remote!.park(i, h.snap.regs, h.snap.xstate, h.snap.sigmask);
    tracee.setSigmask(ALL_SIGNALS);
  });
}

/**
 * Every thread's core entry, keyed by tid in the tree's order. The threads of a process share
 * its scratch area, so they are asked one after another; those of different processes together:
 * the n-th thread of every process is started, then each is waited for, so that their stops
 * overlap. Every thread started is waited for before this returns or throws (a running thread
 * could not be put back).
 */
function coreEntries(frozen: FrozenTask[], holds: Map<number, ThreadHold>, stats: Map<number, ProcStat>, seccomp: SeccompTable): Map<number, CoreEntry> {
  const built = new Map<number, CoreEntry>();
  const live = frozen.filter((f) => !f.zombie).map((f) => ({ f, threads: [...f.tracees.values()] }));
  const rounds = Math.max(0, ...live.map((l) => l.threads.length));
  for (let n = 0; n < rounds; n++) {
    const round = live.filter((l) => l.threads[n]).map(({ f, threads }) => ({ f, tracee: threads[n] }));
    const cores = together(round, ({ f, tracee }) => {
      const h = holds.get(tracee.tid)!;
      return startCoreEntry({ seccomp, snap: h.snap, tracee, remote: h.remote!, stat: stats.get(f.pid)!, pid: f.pid, stopped: f.stopped });
    });
    round.forEach(({ tracee }, i) => built.set(tracee.tid, cores[i]));
  }
  const entries = new Map<number, CoreEntry>();
  for (const f of frozen) {
    if (f.zombie) entries.set(f.pid, zombieCore(f.pid, stats.get(f.pid)!, f.zombie.waitStatus));
    else for (const tid of f.tracees.keys()) entries.set(tid, built.get(tid)!);
  }
  return entries;
}

/** Another error (a /proc read, say) after a task of the tree died is that death. */
function deathInstead(e: unknown, frozen: FrozenTask[]): unknown {
  if (e instanceof InterruptedError || e instanceof TaskGoneError) return e;
  const tids = frozen.flatMap((f) => [...f.tracees.keys()]);
  const dead = tids.find((tid) => threadHasExited(tid)) ?? (e instanceof AmberError ? undefined : tids.find((tid) => threadExitsWithin(tid, 100)));
  return dead === undefined ? e : new TaskGoneError(dead, undefined, 'the dump');
}

function writeTaskImages(ctx: DumpContext, frozen: FrozenTask[], stats: Map<number, ProcStat>, cores: Map<number, CoreEntry>): void {
  const pstree: PstreeEntry[] = frozen.map((f) => {
    const st = stats.get(f.pid)!;
    // CRIU's reader finds the root as the entry whose ppid is 0: the root's real parent is not in the tree
    const ppid = f === frozen[0] ? 0 : st.ppid;
    return { pid: f.pid, ppid, pgid: st.pgrp, sid: st.session, threads: f.zombie ? [f.pid] : [...f.tracees.keys()] };
  });
  ctx.store.write('pstree', 'pstree', pstree);
  for (const [tid, core] of cores) ctx.store.write('core', `core-${tid}`, [core]);
  for (const t of ctx.tasks) ctx.store.write('ids', `ids-${t.pid}`, [t.ids]);
}

/** rootIds are the dumper's own: CRIU restores the root as a child of itself, sharing nothing with it. */
function inventoryOf(dumperIds: ReturnType<typeof kcmpIdsOf>, plugins: ResourcePlugin[]): ToWrite<InventoryEntry> {
  return {
    imgVersion: IMG_VERSION_V1_1,
    fdinfoPerId: true,
    rootIds: dumperIds,
    nsPerId: true,
    amberPlugins: plugins.map((p) => p.name),
    dumpUptime: BigInt(Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e6)),
  };
}

/**
 * Ends a dump: kills the tree after a complete dump, otherwise (failure or --leave-running) puts
 * every thread back exactly as it was and lets it go. Threads first; the leader last, since its
 * finish unmaps the scratch area they share.
 */
function finishDump(frozen: FrozenTask[], holds: Map<number, ThreadHold>, killTree: boolean, log: Logger): void {
  // where each program's sigreturn code lies (finishLanded): one look per file for the tree
  const sigreturnCodes: SigreturnCodeCache = new Map();
  for (const f of frozen) {
    if (f.zombie) continue;
    if (killTree) {
      try {
        kill(f.pid, SIG.KILL);
      } catch (e) {
        log.warn(`could not kill pid ${f.pid}: ${(e as Error).message}`);
      }
      continue;
    }
    const order = [...f.tracees.values()].reverse();
    for (const tracee of order) {
      const h = holds.get(tracee.tid);
      if (!h) continue;
      try {
        if (h.remote && tracee.tid === f.pid) {
          let landed: boolean;
          try {
            landed = h.remote.finishLanded(h.snap, sigreturnCodes);
          } catch (e) {
            // left at its own sigreturn code, with its frame: it puts itself back once detached
            log.warn(`pid ${f.pid}: amber's scratch area may stay mapped in it: ${(e as Error).message}`);
            continue;
          }
          if (!landed) h.remote.finish(h.snap.regs, 'same-task', h.snap.sigmask);
        }
        else if (h.remote) h.remote.finishThread(h.snap.regs, 'same-task', h.snap.sigmask);
        else {
          tracee.setRegs(h.snap.regs);
          tracee.setSigmask(h.snap.sigmask);
        }
      } catch (e) {
        if (threadExitsWithin(tracee.tid, 200)) continue; // nothing to put back in a thread that is gone
        log.warn(`pid ${f.pid} thread ${tracee.tid}: could not undo amber's changes cleanly: ${(e as Error).message}`);
        try {
          tracee.setRegs(h.snap.regs);
          tracee.setSigmask(h.snap.sigmask);
        } catch {
          // the thread is gone
        }
      }
    }
    for (const t of f.tracees.values()) t.detachQuietly();
  }
}

import { writeFileSync } from 'node:fs';
import { IPC_NEWNS_FLAG as CLONE_NEWIPC } from '../kernel/sysv-msg-sem';
import { RESTORE_PHASES, type ResourcePlugin, type RestoreContext, type RestoreOptions, type RestoreTask } from './plugin';
import { CLONE, KSIGACTION_SIZE, PR, RSEQ_FLAG_UNREGISTER, SIG, SYS } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { kill, prctl } from '../kernel/syscalls';
import { ImageStore, readPstree, TaskState, xsaveFromFpregs, type CoreEntry, type FdinfoEntry, type SeccompEntry, type PstreeEntry, type TaskKobjIdsEntry } from '../images';
import { asInterruption, checkpoint, InterruptedError, InterruptGuard } from '../ptrace/interrupt';
import { finishTogether, RemoteSyscall, type TableCall } from '../ptrace/remote-syscall';
import { collectExits } from '../ptrace/wait';
import { together } from '../ptrace/together';
import { BusyPidError, describeHolder, pidHolder, TaskCreator } from '../task/creator';
import { checkCredsAllowed } from '../task/process-state';
import { checkSeccompSuspendable, suspendSeccompOption } from '../task/capabilities';
import { checkShellJobRoot } from '../task/leaders';
import { registersOf, startTaskState, threadInfoOf } from '../task/task-state';
import { prepareZombie } from '../task/zombie';
import { FdTable } from './fd-table';
import { MappingKinds } from './mapping-kinds';
import { faultPoint } from './fault';
import { FileRegistry } from './files';
import { SharedInodes } from './inodes';
import { RunState } from './run-state';
import { TaskFds } from './task-fds';
import { silentLogger, uptimeMs } from './logger';
import type { PluginRegistry } from './registry';
import { FILE_REGISTRY, IMAGE_STORE, LOGGER, SHARED_INODES, TASK_FDS } from './services';
import { ShellJob } from './shell-job';
import { waitForExit } from './wait-exit';
import type { Tracee } from '../ptrace/tracee';

export interface RestoreReport {
  rootPid: number;
  pids: number[];
  seconds: number;
  exitCode?: number;
}

export class IncompleteImageError extends AmberError {}

interface RestoredThread {
  tid: number;
  tracee: Tracee;
  remote: RemoteSyscall;
}

/** Everything about one task of the tree, from its images and as it is being rebuilt. */
interface TaskPlan {
  entry: PstreeEntry;
  cores: Map<number, CoreEntry>;
  zombie: boolean;
  stopped: boolean;
  task?: RestoreTask;
  threads: RestoredThread[];
}

/** Brings a dumped tree back, with its pids, and lets it run. */
export async function restore(options: RestoreOptions, registry: PluginRegistry): Promise<RestoreReport> {
  const started = uptimeMs();
  const log = options.log ?? silentLogger;
  const store = ImageStore.forRead(options.imagesDir);
  const inventory = store.readInventory();
  const files = FileRegistry.read(store);
  const [inodes, fds] = [new SharedInodes((t) => fdFloor(store, t)), new TaskFds(store)];
  // this restore's own plugin instances, given its services (engine/services.ts)
  const services = { [IMAGE_STORE]: store, [LOGGER]: log, [FILE_REGISTRY]: files, [SHARED_INODES]: inodes, [TASK_FDS]: fds };
  const plugins = registry.forRun(selectPlugins(registry, inventory.amberPlugins ?? [], options.skip ?? []), services, 'in a restore');
  const fdTable = new FdTable(plugins);
  const withFds = plugins.some((p) => p.fileKinds?.length);

  const plans = readPlans(store);
  checkShellJobRoot(plans[0].entry, (pid) => plans.some((p) => p.entry.pid === pid), options.shellJob ?? false);
  const job = ShellJob.forRestore(options.shellJob, options.detached ?? false, log);
  job?.adopt(plans.map((p) => p.entry));
  const live = plans.filter((p) => !p.zombie);
  const avoid = live.flatMap((p) => plugins.flatMap((pl) => pl.addressRanges?.(store, p.entry.pid) ?? []));

  // Without -d amber waits for the root and passes on its exit status, so it must become the
  // root's parent: as a subreaper it inherits the root when the restore helper goes.
  if (!options.detached) prctl(PR.SET_CHILD_SUBREAPER, 1);
  const creator = new TaskCreator(avoid, job !== undefined);
  const tasks: RestoreTask[] = [];
  const runState = new RunState();
  const ctx: RestoreContext = { options: { ...options, imagesDir: store.dir }, store, tasks, log, files, inodes, fds, reserved: () => [rangeOf(creator.scratch)], state: (key, init) => runState.get(key, init), openFile: (task, id) => fdTable.openAside(ctx, task, id), mappings: new MappingKinds(plugins) };
  // SIGINT, SIGTERM, SIGHUP, SIGQUIT meanwhile end the restore as a failure does.
  const guard = InterruptGuard.arm();
  let restored = false;
  try {
    for (const phase of RESTORE_PHASES) {
      const t0 = uptimeMs();
      if (phase === 'tree') createTree(creator, plans, tasks, store);
      if (phase === 'resources' && withFds) fdTable.restoreAll(ctx, tasks);
      if (phase === 'task-state') {
        createThreads(creator, live);
        faultPoint('restore:after-threads');
      }
      for (const p of plugins) if (p.phase === phase && p.restore) await p.restore(ctx);
      for (const p of plugins) for (const step of p.laterSteps ?? []) if (step.phase === phase) await step.restore(ctx);
      if (phase === 'memory') ctx.inodes.release();
      if (phase === 'task-state') {
        const seccomp = store.has('seccomp') ? store.readOne<SeccompEntry>('seccomp', 'seccomp') : undefined;
        // a thread of every process at a time, their call loops running together (the threads
        // of one process share its scratch area: one after another)
        for (let round = 0; live.some((p) => round < p.threads.length); round++) {
          const started = live.filter((p) => round < p.threads.length).map((plan) => {
            const th = plan.threads[round];
            return startTaskState(th.remote, plan.cores.get(th.tid)!, seccomp, (m) => log.warn(m), plan.entry.pid);
          });
          for (const rest of started) rest();
        }
      }
      faultPoint(`restore:${phase}`);
      checkpoint();
      if (phase === 'resume') {
        job?.makeForeground(plans[0].entry);
        resumeAll(plans);
      }
      log.debug(`phase ${phase}: ${(uptimeMs() - t0).toFixed(1)} ms`);
    }
    restored = true;
  } catch (err) {
    guard.hold();
    const e = asInterruption(err, guard);
    // Nothing half-restored may stay: kill every task made so far and wait, as its tracer, until
    // it is really gone.
    for (const plan of plans) {
      if (!plan.task) continue;
      try {
        kill(plan.task.pid, SIG.KILL);
      } catch {
        // already gone
      }
    }
    const left = collectExits(plans.flatMap((p) => p.threads.map((th) => th.tracee)));
    if (left.length) log.warn(`restore undo: task(s) ${left.join(', ')} did not end within 10 s of SIGKILL`);
    creator.dispose();
    job?.giveBack();
    job?.close();
    for (const p of plugins) await p.afterRestore?.(ctx, false).catch((err: Error) => log.warn(`plugin ${p.name}: ${err.message}`));
    throw e instanceof InterruptedError ? e.withOutcome('every task the restore had created was killed') : e;
  } finally {
    // after a failure the guard goes; after success it only holds (throws nothing) until the tree
    // is reported running: a signal meanwhile must not end amber before it has said so
    if (restored) guard.hold();
    else guard.disarm();
  }
  const rootPid = plans[0].entry.pid;
  const report: RestoreReport = { rootPid, pids: plans.map((p) => p.entry.pid), seconds: 0 };
  try {
    creator.dispose();
    for (const p of plugins) await p.afterRestore?.(ctx, true).catch((err: Error) => log.warn(`plugin ${p.name}: ${err.message}`));
    if (options.pidfile) writeFileSync(options.pidfile, `${rootPid}\n`);
    report.seconds = (uptimeMs() - started) / 1000;
    options.onRunning?.(report);
  } finally {
    guard.disarm();
  }
  if (!options.detached) report.exitCode = await (job ? job.wait(rootPid) : waitForExit(rootPid));
  job?.giveBack();
  job?.close();
  return report;
}

function readPlans(store: ImageStore): TaskPlan[] {
  const pstree = readPstree(store);
  const seccompOption = suspendSeccompOption();
  return pstree.map((entry) => {
    const cores = new Map<number, CoreEntry>();
    for (const tid of entry.threads) cores.set(tid, store.readOne<CoreEntry>('core', `core-${tid}`));
    const tc = cores.get(entry.pid)?.tc;
    const zombie = tc?.taskState === TaskState.DEAD;
    for (const tid of entry.threads) {
      const holder = pidHolder(tid);
      if (holder && holder.state !== 'Z') throw new BusyPidError(tid, describeHolder(tid));
      const creds = cores.get(tid)?.threadCore?.creds;
      if (creds) checkCredsAllowed(entry.pid, creds);
      checkSeccompSuspendable(tid, cores.get(tid)?.threadCore?.seccompMode ?? 0, seccompOption, 'restore');
    }
    return { entry, cores, zombie, stopped: tc?.taskState === TaskState.STOPPED, threads: [] };
  });
}

function selectPlugins(registry: PluginRegistry, dumped: string[], skip: string[]): ResourcePlugin[] {
  const missing = dumped.filter((n) => !registry.get(n) && !skip.includes(n));
  if (missing.length) {
    throw new IncompleteImageError(
      `the images need plugin(s) ${missing.join(', ')}, which are not installed ` +
        `(--skip ${missing.join(',')} restores without them: the process comes back lacking what they hold)`,
    );
  }
  const all = registry.select(undefined, skip.filter((n) => registry.get(n)));
  const absent = all.filter((p) => dumped.length && !dumped.includes(p.name) && p.restore);
  if (absent.length) {
    throw new IncompleteImageError(
      `this is a partial dump without ${absent.map((p) => p.name).join(', ')}; restoring it would lose those resources ` +
        `(--skip ${absent.map((p) => p.name).join(',')} restores it anyway: the process comes back without what they hold` +
        `${absent.some((p) => p.name === 'fs') ? ', with no open files' : ''})`,
    );
  }
  return all.filter((p) => dumped.length === 0 || dumped.includes(p.name));
}

/**
 * Creates every process, parents first, each by its restored parent so the parent/child links
 * come back. Session and group leadership is taken right away, before the task makes children,
 * so that they inherit it; a task joins another's group at once if its leader is made already,
 * else once every task exists.
 */
function createTree(creator: TaskCreator, plans: TaskPlan[], tasks: RestoreTask[], store: ImageStore): void {
  const byPid = new Map(plans.map((p) => [p.entry.pid, p]));
  const stand = new StandIns(creator);
  const joinedEarly = new Set<number>();
  const rootIpcNs = store.readOne<TaskKobjIdsEntry>('ids', `ids-${plans[0].entry.pid}`).ipcNsId;
  for (const plan of plans) {
    const { entry } = plan;
    const parentPlan = byPid.get(entry.ppid);
    const parent = parentPlan?.task;
    const ids = plan.zombie ? undefined : store.readOne<TaskKobjIdsEntry>('ids', `ids-${entry.pid}`);
    let flags = parent && ids ? sharingFlags(ids, parent.ids) : 0;
    let maker = parent?.remote;
    if (parent && parentPlan) {
      const via = stand.makerFor(entry, parentPlan.entry, parent, byPid);
      if (via) {
        maker = via;
        flags |= CLONE.PARENT;
      }
    }
    if (ids && parent && ids.ipcNsId !== rootIpcNs) {
      throw new IncompleteImageError(`pid ${entry.pid} was in another IPC namespace than its tree's root (pid ${plans[0].entry.pid}): amber restores one IPC namespace per tree`);
    }
    const created = creator.createTask(entry.pid, maker, flags);
    // A tree dumped in its own IPC namespace gets a new one, made by its root before any child.
    if (!parent && ids?.ipcNsId !== undefined) created.remote.sys.with('a new IPC namespace for the tree').unshare(CLONE_NEWIPC);
    const task: RestoreTask = { pid: entry.pid, tracee: created.tracee, remote: created.remote, ids: ids ?? { vmId: 0, filesId: 0, fsId: 0, sighandId: 0 }, creds: plan.cores.get(entry.pid)?.threadCore?.creds };
    plan.task = task;
    plan.threads.push({ tid: entry.pid, tracee: created.tracee, remote: created.remote });
    const remote = created.remote;
    // The helper's rseq area is about to be unmapped; a registered one would then fault.
    const rseq = created.tracee.getRseqConfig();
    const calls: TableCall[] = [];
    if (rseq.pointer) calls.push({ name: 'rseq', args: [rseq.pointer, rseq.size, RSEQ_FLAG_UNREGISTER, rseq.signature], detail: 'unregister' });
    if (!(flags & CLONE.FILES)) calls.push({ name: 'close_range', args: [0, 0xffffffff, 0] });
    if (entry.sid === entry.pid) calls.push({ name: 'setsid', args: [] });
    else if (entry.pgid === entry.pid) calls.push({ name: 'setpgid', args: [0, 0] });
    // a group whose leader is made already is joined in the same stop
    else if (byPid.get(entry.pgid)?.task) {
      calls.push({ name: 'setpgid', args: [0, entry.pgid], detail: `joining process group ${entry.pgid}` });
      joinedEarly.add(entry.pid);
    }
    remote.invokeMany(calls);
    if (!plan.zombie) tasks.push(task);
  }
  for (const plan of plans) {
    const { entry } = plan;
    if (entry.pgid !== entry.pid && byPid.has(entry.pgid) && !joinedEarly.has(entry.pid)) {
      plan.task!.remote.sys.with(`joining process group ${entry.pgid}`).setpgid(0, entry.pgid);
    }
  }
  stand.dismiss();
}

/**
 * Stand-ins for session and group leaders that had exited before the dump. A task can only be in
 * a session it inherited, and only join a group that has a live member: so a stand-in takes the
 * dead leader's pid, becomes leader (setsid / setpgid), and creates the task with CLONE_PARENT,
 * which makes it the child of the right parent while inheriting the stand-in's session and
 * group. Then the stand-ins exit; their parent ignores SIGCHLD for that moment, so no zombie is
 * left behind (its own handlers are put back later, with the rest of the task state).
 */
class StandIns {
  private readonly byPid = new Map<number, { remote: RemoteSyscall; parent: RestoreTask }>();

  constructor(private readonly creator: TaskCreator) {}

  makerFor(entry: PstreeEntry, parentEntry: PstreeEntry, parent: RestoreTask, plans: Map<number, TaskPlan>): RemoteSyscall | undefined {
    let maker: RemoteSyscall | undefined;
    let groupDone = false;
    if (entry.sid !== entry.pid && entry.sid !== parentEntry.sid && !plans.has(entry.sid)) {
      maker = this.standIn(entry.sid, parent, undefined, 'session');
      groupDone = entry.pgid === entry.sid;
    }
    const inheritedGroup = maker ? entry.sid : parentEntry.pgid;
    if (!groupDone && entry.pgid !== entry.pid && entry.pgid !== inheritedGroup && !plans.has(entry.pgid)) {
      maker = this.standIn(entry.pgid, parent, maker, 'group');
    }
    return maker;
  }

  private standIn(pid: number, parent: RestoreTask, via: RemoteSyscall | undefined, leads: 'session' | 'group'): RemoteSyscall {
    const known = this.byPid.get(pid);
    if (known) return known.remote;
    const made = this.creator.createTask(pid, via ?? parent.remote, via ? CLONE.PARENT : 0);
    if (leads === 'session') made.remote.sys.with('stand-in leader').setsid();
    else made.remote.sys.with('stand-in leader').setpgid(0, 0);
    this.byPid.set(pid, { remote: made.remote, parent });
    return made.remote;
  }

  dismiss(): void {
    for (const { remote, parent } of this.byPid.values()) {
      const ignore = Buffer.alloc(KSIGACTION_SIZE);
      ignore.writeBigUInt64LE(1n, 0); // SIG_IGN
      parent.remote.resetData();
      parent.remote.setSigaction(SIG.CHLD, ignore, 'rt_sigaction(SIGCHLD, SIG_IGN)');
      exitTask(remote, 0);
    }
    this.byPid.clear();
  }
}

/** clone3 flags that make a child share what it shared with its parent at dump time. */
function sharingFlags(child: TaskKobjIdsEntry, parent: TaskKobjIdsEntry): number {
  let flags = 0;
  if (child.filesId === parent.filesId) flags |= CLONE.FILES;
  if (child.fsId === parent.fsId) flags |= CLONE.FS;
  if (child.amberSysvsemId !== undefined && child.amberSysvsemId === parent.amberSysvsemId) flags |= CLONE.SYSVSEM;
  return flags;
}

/** Threads come after the address space is rebuilt: they only need their registers set. */
function createThreads(creator: TaskCreator, plans: TaskPlan[]): void {
  const flags = CLONE.VM | CLONE.FS | CLONE.FILES | CLONE.SIGHAND | CLONE.THREAD | CLONE.SYSVSEM;
  // every process's clone3 loop at once: one's threads are taken while the next's are made
  together(plans, (plan) => {
    const tids = plan.entry.threads.filter((tid) => tid !== plan.entry.pid);
    return creator.beginThreads(tids, plan.task!.remote, flags, (made) => plan.threads.push({ tid: made.pid, tracee: made.tracee, remote: made.remote }));
  });
}

/**
 * Zombies exit with their status; every thread gets its registers, the leader last (its finish
 * unmaps the scratch area the threads share); then all go together, and stopped tasks stop.
 */
function resumeAll(plans: TaskPlan[]): void {
  for (const plan of plans) if (plan.zombie) becomeZombie(plan);
  const live = plans.filter((p) => !p.zombie);
  finishTogether(live.flatMap((plan) => plan.threads.map((th) => ({ remote: th.remote, final: registersOf(plan.cores.get(th.tid)!), mode: 'new-task' as const, unmaps: th.tid === plan.entry.pid }))));
  for (const plan of live) {
    for (const th of [...plan.threads].reverse()) {
      const core = plan.cores.get(th.tid)!;
      const info = threadInfoOf(core);
      th.tracee.setXstate(info.xsaveRaw ?? xsaveFromFpregs(info.fpregs, th.tracee.getXstate()));
      th.tracee.setSigmask(core.threadCore?.blkSigset ?? 0n);
      faultPoint('restore:resume-thread');
    }
  }
  // A stopped task gets its SIGSTOP while still held, so it stops before running anything.
  for (const plan of plans) if (plan.stopped) kill(plan.entry.pid, SIG.STOP);
  for (const plan of plans) for (const th of plan.threads) if (!plan.zombie) th.tracee.detach();
}

/** Ends a task the way the dumped zombie ended: exit(code), or killed by its signal. */
function becomeZombie(plan: TaskPlan): void {
  const tc = plan.cores.get(plan.entry.pid)!.tc!;
  const status = tc.exitCode;
  const remote = plan.task!.remote;
  prepareZombie(remote, tc);
  exitTask(remote, (status >> 8) & 0xff, status & 0x7f);
}

/** Makes a task we hold exit with code (or kill itself with sig) and collects its end as its tracer. */
function exitTask(remote: RemoteSyscall, code: number, sig = 0): void {
  const regs = remote.tracee.getRegs();
  regs.set('ip', remote.scratch.base);
  regs.set('origAx', -1n);
  regs.set('ax', sig ? SYS.kill : SYS.exit_group);
  regs.set('di', sig ? remote.pid : code);
  regs.set('si', sig);
  remote.tracee.setRegs(regs);
  remote.tracee.cont(0);
  remote.tracee.runToExit('exiting');
}

/** Above every fd number of the task's dumped fd table. */
function fdFloor(store: ImageStore, task: RestoreTask): number {
  const name = `fdinfo-${task.ids.filesId}`;
  const fds = store.has(name) ? store.read<FdinfoEntry>('fdinfo', name).entries.map((e) => e.fd) : [];
  return Math.max(2, ...fds) + 1;
}

function rangeOf(s: { base: bigint; size: number }) {
  return { start: s.base, end: s.base + BigInt(s.size) };
}

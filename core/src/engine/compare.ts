import { existsSync } from 'node:fs';
import { AmberError } from '../kernel/errors';
import { ImageStore, readPstree, TaskState, type CoreEntry, type FdinfoEntry, type PstreeEntry, type TaskKobjIdsEntry } from '../images';
import { listThreads, parseStatus, procRead, readStat } from '../task/proc';
import { SharedObjects } from '../objects/shared-objects';
import { kcmpIdsOf } from './ids';
import { NoSuchProcessError } from '../task/tree';
import { signalOfSigaction } from '../task/sigactions';
import { collectFds } from './fd-table';
import { FileRegistry } from './files';
import { compareIdentities } from './inodes';
import type { AddressRange, CompareContext, CompareOptions, Difference, FileKind, ResourcePlugin } from './plugin';
import type { PluginRegistry } from './registry';
import { FILE_REGISTRY, IMAGE_STORE } from './services';
import { asRestoredShellJob } from './shell-job';

/** Differences between a live process tree and its images, per plugin; empty when they match. */
export async function compare(options: CompareOptions, registry: PluginRegistry): Promise<Difference[]> {
  if (!existsSync(`/proc/${options.pid}`)) throw new NoSuchProcessError(options.pid);
  const store = ImageStore.forRead(options.imagesDir);
  const inventory = store.readInventory();
  const files = FileRegistry.read(store);
  const dumped = registry.all().filter((p) => !inventory.amberPlugins?.length || inventory.amberPlugins.includes(p.name));
  const plugins = registry.forRun(dumped, { [IMAGE_STORE]: store, [FILE_REGISTRY]: files }, 'in a compare');
  const pstree = readPstree(store);
  if (pstree[0].pid !== options.pid) {
    throw new AmberError(`pid ${options.pid} is not what ${options.imagesDir} holds (its root is pid ${pstree[0].pid})`);
  }
  const cores = new Map<number, CoreEntry>();
  for (const e of pstree) for (const tid of e.threads) cores.set(tid, store.readOne<CoreEntry>('core', `core-${tid}`));
  const zombie = (pid: number) => cores.get(pid)?.tc?.taskState === TaskState.DEAD;
  if (options.shellJob) asRestoredShellJob(pstree, readStat(options.pid).session);
  const diffs = [...compareTree(pstree, cores), ...compareSharing(store, pstree, cores), ...compareSignals(pstree, cores)];
  const pids = pstree.map((e) => e.pid).filter((pid) => !zombie(pid) && existsSync(`/proc/${pid}`));
  const kernelOwned = (pid: number): AddressRange[] =>
    (pstree.find((e) => e.pid === pid)?.threads ?? []).flatMap((tid) => {
      const rseq = cores.get(tid)?.threadCore?.rseqEntry;
      return rseq ? [{ start: rseq.rseqAbiPointer, end: rseq.rseqAbiPointer + BigInt(rseq.rseqAbiSize) }] : [];
    });
  const ctx: CompareContext = { options: { ...options, imagesDir: store.dir }, store, pids, files, liveFds: (pid) => collectFds(pid, plugins), kernelOwned };
  // a pre-dump has no fd tables, whatever plugins came along for their mappings
  const fdTables = pstree.some((e) => !zombie(e.pid) && store.has(`fdinfo-${store.readOne<TaskKobjIdsEntry>('ids', `ids-${e.pid}`).filesId}`));
  if (fdTables && plugins.some((p) => p.fileKinds?.length)) diffs.push(...compareFdTables(ctx, plugins));
  for (const p of plugins) if (p.compare) diffs.push(...(await p.compare(ctx)));
  diffs.push(...compareIdentities(plugins.flatMap((p) => p.identities?.(ctx) ?? [])));
  return diffs;
}

/** The tree's shape: every task with its parent, group, session, state and threads. */
function compareTree(pstree: PstreeEntry[], cores: Map<number, CoreEntry>): Difference[] {
  const out: Difference[] = [];
  for (const e of pstree) {
    const add = (what: string, expected: string, actual: string) => out.push({ plugin: 'core', pid: e.pid, what, expected, actual });
    if (!existsSync(`/proc/${e.pid}`)) {
      add('task', 'present', 'gone');
      continue;
    }
    const st = readStat(e.pid);
    const state = cores.get(e.pid)?.tc?.taskState;
    const wantState = state === TaskState.DEAD ? 'zombie' : state === TaskState.STOPPED ? 'stopped' : 'running';
    const liveState = st.state === 'Z' ? 'zombie' : st.state === 'T' ? 'stopped' : 'running';
    if (wantState !== liveState) add('state', wantState, liveState);
    if (e.pid !== pstree[0].pid && st.ppid !== e.ppid) add('parent', String(e.ppid), String(st.ppid));
    if (st.pgrp !== e.pgid) add('process group', String(e.pgid), String(st.pgrp));
    if (st.session !== e.sid) add('session', String(e.sid), String(st.session));
    if (liveState !== 'zombie') {
      const tids = listThreads(e.pid);
      if (tids.join(',') !== [...e.threads].sort((a, b) => a - b).join(',')) add('threads', e.threads.join(','), tids.join(','));
    }
  }
  return out;
}

const SHARED_KINDS = [['vmId', 'VM', 'address space'], ['filesId', 'FILES', 'fd table'], ['fsId', 'FS', 'cwd and root'], ['sighandId', 'SIGHAND', 'signal handlers']] as const;

/** Which tasks share an mm, fd table, fs or signal handlers: the same pairs as at dump time. */
function compareSharing(store: ImageStore, pstree: PstreeEntry[], cores: Map<number, CoreEntry>): Difference[] {
  const live = pstree.filter((e) => cores.get(e.pid)?.tc?.taskState !== TaskState.DEAD && existsSync(`/proc/${e.pid}`));
  const objects = new SharedObjects();
  const now = new Map(live.map((e) => [e.pid, kcmpIdsOf(objects, e.pid)]));
  const then = new Map(live.map((e) => [e.pid, store.readOne<TaskKobjIdsEntry>('ids', `ids-${e.pid}`)]));
  const out: Difference[] = [];
  for (let i = 0; i < live.length; i++) {
    for (let j = i + 1; j < live.length; j++) {
      const [a, b] = [live[i].pid, live[j].pid];
      for (const [field, , what] of SHARED_KINDS) {
        const was = then.get(a)![field] === then.get(b)![field];
        const is = now.get(a)![field] === now.get(b)![field];
        if (was !== is) out.push({ plugin: 'core', pid: a, what: `${what} shared with pid ${b}`, expected: String(was), actual: String(is) });
      }
    }
  }
  return out;
}

/** Every thread's blocked signals, and which signals the process ignores or catches. */
function compareSignals(pstree: PstreeEntry[], cores: Map<number, CoreEntry>): Difference[] {
  const out: Difference[] = [];
  const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;
  for (const e of pstree) {
    const leader = cores.get(e.pid);
    if (leader?.tc?.taskState === TaskState.DEAD || !existsSync(`/proc/${e.pid}`)) continue;
    for (const tid of e.threads) {
      if (inMaskSwappingSyscall(e.pid, tid)) continue;
      const st = parseStatus(procRead(e.pid, `task/${tid}/status`));
      const want = cores.get(tid)?.threadCore?.blkSigset ?? 0n;
      const blocked = BigInt('0x' + (st.get('SigBlk') ?? '0'));
      if (blocked !== want) out.push({ plugin: 'core', pid: e.pid, what: `thread ${tid} blocked signals`, expected: hex(want), actual: hex(blocked) });
    }
    const st = parseStatus(procRead(e.pid, 'status'));
    let ignored = 0n;
    let caught = 0n;
    const sigactions = leader?.tc?.sigactions ?? [];
    sigactions.forEach((sa, i) => {
      const bit = 1n << BigInt(signalOfSigaction(i, sigactions.length) - 1);
      if (sa.sigaction === 1n) ignored |= bit;
      else if (sa.sigaction > 1n) caught |= bit;
    });
    const liveIgnored = BigInt('0x' + (st.get('SigIgn') ?? '0'));
    const liveCaught = BigInt('0x' + (st.get('SigCgt') ?? '0'));
    if (liveIgnored !== ignored) out.push({ plugin: 'core', pid: e.pid, what: 'ignored signals', expected: hex(ignored), actual: hex(liveIgnored) });
    if (liveCaught !== caught) out.push({ plugin: 'core', pid: e.pid, what: 'caught signals', expected: hex(caught), actual: hex(liveCaught) });
  }
  return out;
}

/**
 * sigsuspend, ppoll, pselect6 and epoll_pwait(2) run with a temporary signal mask, which is what
 * /proc shows meanwhile; the real one (what amber dumps) comes back when they return.
 */
function inMaskSwappingSyscall(pid: number, tid: number): boolean {
  try {
    const nr = Number(procRead(pid, `task/${tid}/syscall`).split(' ')[0]);
    return [130, 270, 271, 281, 441].includes(nr);
  } catch {
    return false;
  }
}

function compareFdTables(ctx: CompareContext, plugins: readonly ResourcePlugin[]): Difference[] {
  const files = ctx.files;
  const kinds = plugins.flatMap((p) => p.fileKinds ?? []);
  // a difference is the plugin's whose kind the dumped fd was; an fd opened since is fs's
  const pluginOf = (kind: FileKind | undefined) => plugins.find((p) => kind && p.fileKinds?.includes(kind))?.name ?? 'fs';
  const out: Difference[] = [];
  const tablesSeen = new Set<number>();
  for (const pid of ctx.pids) {
    const ids = ctx.store.readOne<TaskKobjIdsEntry>('ids', `ids-${pid}`);
    if (tablesSeen.has(ids.filesId)) continue;
    tablesSeen.add(ids.filesId);
    const dumped = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${ids.filesId}`).entries;
    const live = new Map(ctx.liveFds(pid).map((f) => [f.fd, f]));
    for (const e of dumped) {
      const l = live.get(e.fd);
      const desc = files.get(e.id);
      const kind = kinds.find((k) => k.fdType === desc.type);
      const add = (what: string, expected: string, actual: string) => out.push({ plugin: pluginOf(kind), pid, what, expected, actual });
      if (!l) {
        add(`fd ${e.fd}`, `open (${kind?.name ?? `type ${desc.type}`})`, 'closed');
        continue;
      }
      live.delete(e.fd);
      if (kind && !kind.claims(l)) {
        add(`fd ${e.fd}`, `a ${kind.name}`, l.link);
        continue;
      }
      const cloexec = (l.info.flags & 0o2000000) !== 0;
      if (cloexec !== ((e.flags & 1) === 1)) add(`fd ${e.fd} close-on-exec`, String((e.flags & 1) === 1), String(cloexec));
      if (!kind) continue;
      const entry = files.member(kind, e.id);
      if (!entry) add(`fd ${e.fd}`, `a ${kind.name} description (${kind.member.name})`, `files.img entry ${desc.member ?? 'with no known member'}`);
      else for (const d of kind.compareDescription?.(l, entry) ?? []) add(`fd ${e.fd} ${d.what}`, d.expected, d.actual);
    }
    for (const l of live.values()) out.push({ plugin: pluginOf(undefined), pid, what: `fd ${l.fd}`, expected: 'closed', actual: `open: ${l.link}` });
  }
  return out;
}

import { existsSync } from 'node:fs';
import { AmberError } from '../kernel/errors';
import { ImageStore, TaskState, type CoreEntry, type FdinfoEntry, type FileEntry, type PstreeEntry, type TaskKobjIdsEntry } from '../images';
import { listThreads, readStat } from '../task/proc';
import { NoSuchProcessError } from '../task/tree';
import { collectFds } from './fd-table';
import { FileRegistry } from './files';
import type { AddressRange, CompareContext, CompareOptions, Difference, FileDescription, FileKind } from './plugin';
import type { PluginRegistry } from './registry';

/** Differences between a live process tree and its images, per plugin; empty when they match. */
export async function compare(options: CompareOptions, registry: PluginRegistry): Promise<Difference[]> {
  if (!existsSync(`/proc/${options.pid}`)) throw new NoSuchProcessError(options.pid);
  const store = ImageStore.forRead(options.imagesDir);
  const inventory = store.readInventory();
  const plugins = registry.all().filter((p) => !inventory.amberPlugins?.length || inventory.amberPlugins.includes(p.name));
  const pstree = store.read<PstreeEntry>('pstree', 'pstree').entries;
  if (pstree[0].pid !== options.pid) {
    throw new AmberError(`pid ${options.pid} is not what ${options.imagesDir} holds (its root is pid ${pstree[0].pid})`);
  }
  const cores = new Map<number, CoreEntry>();
  for (const e of pstree) for (const tid of e.threads) cores.set(tid, store.read<CoreEntry>('core', `core-${tid}`).entries[0]);
  const zombie = (pid: number) => cores.get(pid)?.tc?.taskState === TaskState.DEAD;
  const diffs = compareTree(pstree, cores);
  const pids = pstree.map((e) => e.pid).filter((pid) => !zombie(pid) && existsSync(`/proc/${pid}`));
  const kernelOwned = (pid: number): AddressRange[] =>
    (pstree.find((e) => e.pid === pid)?.threads ?? []).flatMap((tid) => {
      const rseq = cores.get(tid)?.threadCore?.rseqEntry;
      return rseq ? [{ start: rseq.rseqAbiPointer, end: rseq.rseqAbiPointer + BigInt(rseq.rseqAbiSize) }] : [];
    });
  const ctx: CompareContext = { options, store, pids, liveFds: collectFds, kernelOwned };
  const kinds = plugins.flatMap((p) => p.fileKinds ?? []);
  if (kinds.length) diffs.push(...compareFdTables(ctx, kinds));
  for (const p of plugins) if (p.compare) diffs.push(...(await p.compare(ctx)));
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

function compareFdTables(ctx: CompareContext, kinds: FileKind[]): Difference[] {
  const files = new FileRegistry(ctx.store.read<FileEntry>('files', 'files').entries as FileDescription[]);
  const out: Difference[] = [];
  const tablesSeen = new Set<number>();
  for (const pid of ctx.pids) {
    const ids = ctx.store.read<TaskKobjIdsEntry>('ids', `ids-${pid}`).entries[0];
    if (tablesSeen.has(ids.filesId)) continue;
    tablesSeen.add(ids.filesId);
    const dumped = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${ids.filesId}`).entries;
    const live = new Map(ctx.liveFds(pid).map((f) => [f.fd, f]));
    const add = (what: string, expected: string, actual: string) => out.push({ plugin: 'fs', pid, what, expected, actual });
    for (const e of dumped) {
      const l = live.get(e.fd);
      const desc = files.get(e.id);
      const kind = kinds.find((k) => k.fdType === desc.type);
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
      for (const d of kind?.compareDescription?.(l, desc) ?? []) add(`fd ${e.fd} ${d.what}`, d.expected, d.actual);
    }
    for (const l of live.values()) add(`fd ${l.fd}`, 'closed', `open: ${l.link}`);
  }
  return out;
}

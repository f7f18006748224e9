import { ImageStore } from '../images';
import { collectFds } from './fd-table';
import type { FdinfoEntry } from '../images';
import { FileRegistry } from './files';
import { NoSuchProcessError } from '../task/tree';
import { existsSync } from 'node:fs';
import type { CompareContext, CompareOptions, Difference, FileKind } from './plugin';
import type { PluginRegistry } from './registry';

/** Differences between a live process and its images, per plugin; empty when they match. */
export async function compare(options: CompareOptions, registry: PluginRegistry): Promise<Difference[]> {
  if (!existsSync(`/proc/${options.pid}`)) throw new NoSuchProcessError(options.pid);
  const store = ImageStore.forRead(options.imagesDir);
  const inventory = store.readInventory();
  const plugins = registry.all().filter((p) => !inventory.amberPlugins?.length || inventory.amberPlugins.includes(p.name));
  const pids = store.read<{ pid: number }>('pstree', 'pstree').entries.map((e) => e.pid);
  const ctx: CompareContext = { options, store, pids, liveFds: collectFds };
  const diffs: Difference[] = [];
  const kinds = plugins.flatMap((p) => p.fileKinds ?? []);
  if (kinds.length) diffs.push(...compareFdTables(ctx, kinds));
  for (const p of plugins) if (p.compare) diffs.push(...(await p.compare(ctx)));
  return diffs;
}

function compareFdTables(ctx: CompareContext, kinds: FileKind[]): Difference[] {
  const files = new FileRegistry(ctx.store.read('files', 'files').entries as never);
  const out: Difference[] = [];
  for (const pid of ctx.pids) {
    const ids = ctx.store.read<{ filesId: number }>('ids', `ids-${pid}`).entries[0];
    const dumped = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${ids.filesId}`).entries;
    const live = new Map(ctx.liveFds(pid).map((f) => [f.fd, f]));
    const add = (what: string, expected: string, actual: string) => out.push({ plugin: 'fs', pid, what, expected, actual });
    for (const e of dumped) {
      const l = live.get(e.fd);
      const desc = files.get(e.id);
      if (!l) {
        add(`fd ${e.fd}`, `open (type ${desc.type})`, 'closed');
        continue;
      }
      live.delete(e.fd);
      const kind = kinds.find((k) => k.fdType === desc.type);
      if (kind && !kind.claims(l)) {
        add(`fd ${e.fd}`, `a ${kind.name}`, l.link);
        continue;
      }
      const cloexec = (l.info.flags & 0o2000000) !== 0;
      if (cloexec !== ((e.flags & 1) === 1)) add(`fd ${e.fd} close-on-exec`, String((e.flags & 1) === 1), String(cloexec));
      for (const d of kind?.compareDescription?.(l, desc) ?? []) add(`fd ${e.fd}`, d.split(': ')[0], d);
    }
    for (const l of live.values()) add(`fd ${l.fd}`, 'closed', `open: ${l.link}`);
  }
  return out;
}

import { dump, type DumpReport } from './dump';
import { PreDumpError } from './image-parent';
import type { DumpOptions } from './plugin';
import type { PluginRegistry } from './registry';

// Incremental dumps: the memory plugin (plugins/mm, tracker.ts) arms and reads the dirty tracking;
// the core links a dump to its parent image set (image-parent.ts).

/**
 * Pre-dump: memory only, into DIR; the tree keeps running with dirty tracking armed, so a later
 * dump with --prev-images-dir DIR writes only what changed.
 */
export async function preDump(options: DumpOptions, registry: PluginRegistry): Promise<DumpReport> {
  if (!registry.get('mm')) throw new PreDumpError('pre-dump needs the mm plugin');
  // plugins owning mappings mm meets (ipc's SysV segments) come along; their dump() skips a pre-dump
  const owners = registry.all().filter((p) => p.mappingKinds?.length).map((p) => p.name);
  return dump({ ...options, preDump: true, only: ['mm', ...owners], skip: undefined, leaveRunning: true, trackMem: true }, registry);
}

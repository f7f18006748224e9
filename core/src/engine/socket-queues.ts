import * as path from 'node:path';
import { PROTO_DIR, registerImageType } from '../images/registry';
import type { SkPacketEntry } from '../images';
import type { DumpContext, RestoreContext } from './plugin';

// sk-queues.img: what is queued to the sockets of the tree, for every socket kind that keeps a
// queue (one image, as CRIU has it, so each kind appends to it rather than owning it).

export const SK_QUEUES = 'sk-queues';

registerImageType<SkPacketEntry>({
  type: SK_QUEUES, magic: 0x56264026, protoFile: path.join(PROTO_DIR, 'sk-queues.proto'),
  message: 'amber.SkPacketEntry', blobLength: (e) => e.length,
});

export interface QueuedRecord {
  entry: SkPacketEntry;
  data: Buffer;
}

/** Adds records queued to a socket to this dump's sk-queues.img (rewritten whole as it grows: fds are dumped after every plugin's own step). */
export function recordSocketQueue(ctx: DumpContext, records: readonly QueuedRecord[]): void {
  if (!records.length) return;
  const all = ctx.state('core:sk-queues', () => ({ entries: [] as SkPacketEntry[], blobs: [] as Buffer[] }));
  for (const r of records) {
    all.entries.push(r.entry);
    all.blobs.push(r.data);
  }
  ctx.store.write(SK_QUEUES, SK_QUEUES, all.entries, { blobs: all.blobs });
}

/** The dumped queues, by the files.img id of the socket they are queued to, in order. */
export function socketQueuesOf(ctx: RestoreContext): Map<number, QueuedRecord[]> {
  return ctx.state('core:sk-queues-read', () => {
    const out = new Map<number, QueuedRecord[]>();
    if (!ctx.store.has(SK_QUEUES)) return out;
    const img = ctx.store.read<SkPacketEntry>(SK_QUEUES, SK_QUEUES);
    img.entries.forEach((entry, i) => {
      const list = out.get(entry.idFor) ?? [];
      list.push({ entry, data: img.blobs[i] ?? Buffer.alloc(0) });
      out.set(entry.idFor, list);
    });
    return out;
  });
}

import { AmberError } from '../kernel/errors';
import type { MapsEntry } from '../task/proc';
import type { MappingKind, ResourcePlugin } from './plugin';

export class MappingKindError extends AmberError {}

/** The mapping kinds of one run's plugins (plugin.ts MappingKind): who owns which mapping. */
export class MappingKinds {
  private readonly kinds: { kind: MappingKind; plugin: string }[];

  constructor(plugins: readonly ResourcePlugin[]) {
    this.kinds = plugins.flatMap((p) => (p.mappingKinds ?? []).map((kind) => ({ kind, plugin: p.name })));
    for (const [i, a] of this.kinds.entries()) {
      const b = this.kinds.slice(i + 1).find((o) => o.kind.status & a.kind.status);
      if (b) throw new MappingKindError(`mapping kinds ${a.plugin}/${a.kind.name} and ${b.plugin}/${b.kind.name} both use VMA status 0x${(a.kind.status & b.kind.status).toString(16)}`);
    }
  }

  /** The kind that owns a mapping of pid, if any; two that claim it are an error naming both. */
  claim(pid: number, m: MapsEntry): MappingKind | undefined {
    const hits = this.kinds.filter((k) => k.kind.claims(m));
    if (hits.length > 1) {
      throw new MappingKindError(`pid ${pid}: mapping 0x${m.start.toString(16)} (${m.path}) is claimed by ${hits.map((h) => `${h.plugin}/${h.kind.name}`).join(' and ')}`);
    }
    return hits[0]?.kind;
  }

  /** The kind whose status bit a dumped VMA carries, if any. */
  byStatus(status: number): MappingKind | undefined {
    return this.kinds.find((k) => status & k.kind.status)?.kind;
  }

}

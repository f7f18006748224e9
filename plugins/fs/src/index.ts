import 'reflect-metadata';
import { injectable } from 'tsyringe';
import type { CompareContext, Difference, DumpContext, ResourcePlugin, RestoreContext } from '@amber/core';
import { RegularFileKind } from './regular-file';
import { compareFsState, dumpFsState, restoreFsState } from './fs-state';

/** Files: the kinds of open file this plugin owns, plus cwd, root and umask. */
@injectable()
export class FilesPlugin implements ResourcePlugin {
  readonly name = 'fs';
  readonly phase = 'resources' as const;
  readonly fileKinds = [new RegularFileKind()];

  async dump(ctx: DumpContext): Promise<void> {
    dumpFsState(ctx);
  }

  async restore(ctx: RestoreContext): Promise<void> {
    restoreFsState(ctx);
  }

  async compare(ctx: CompareContext): Promise<Difference[]> {
    return compareFsState(ctx);
  }
}

export default FilesPlugin;

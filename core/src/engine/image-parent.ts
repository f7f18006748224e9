import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { ImageStore } from '../images';
import { AmberError } from '../kernel/errors';

// Image sets of incremental dumps: a dump's `parent` link to the previous (pre-)dump, as CRIU's.

export class PreDumpError extends AmberError {}

/** The previous image set of a dump: --prev-images-dir is relative to the images dir (CRIU). */
export function resolvePrevDir(imagesDir: string, prev: string): string {
  return isAbsolute(prev) ? prev : resolve(imagesDir, prev);
}

/** Links DIR/parent to the previous image set, as CRIU does; restore follows it. */
export function linkParent(store: ImageStore, prev: string): void {
  const target = resolvePrevDir(store.dir, prev);
  if (!existsSync(join(target, 'inventory.img'))) {
    throw new PreDumpError(`--prev-images-dir ${prev}: ${target} is not a complete image set (no inventory.img)`);
  }
  store.linkParent(prev);
}

/** The parent image set of DIR (its `parent` link), if any. */
export function parentDirOf(imagesDir: string): string | undefined {
  const link = join(imagesDir, 'parent');
  return existsSync(link) ? link : undefined;
}

import type { SharedObjects } from '../objects/shared-objects';

/** The ids-<pid> record: which mm, fd table, fs and signal handlers a task shares with others. */
export function kcmpIdsOf(objects: SharedObjects, pid: number) {
  return {
    vmId: objects.identify('VM', pid).id,
    filesId: objects.identify('FILES', pid).id,
    fsId: objects.identify('FS', pid).id,
    sighandId: objects.identify('SIGHAND', pid).id,
  };
}

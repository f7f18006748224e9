import * as fs from 'node:fs';

/**
 * CRIU's mount options (--ext-mount-map, --enable-external-masters, --enable-fs ...) say how to
 * dump and rebuild a mount namespace of the tree's own. CRIU dumps one only when the tree is in
 * another mount namespace than its own, and rebuilds one only from an image holding mounts. When
 * neither is the case they change nothing, for CRIU as for amber, which never dumps mounts: the
 * reason not to run, or undefined.
 */
export function mountOptionMatters(option: { word: string; tree?: number; imagesDir?: string }): string | undefined {
  if (option.tree !== undefined) {
    const own = fs.readlinkSync('/proc/self/ns/mnt');
    for (const pid of treeOf(option.tree)) {
      let ns: string;
      try {
        ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
      } catch {
        continue; // gone: the dump itself says so if it is the root
      }
      if (ns !== own) return `${option.word}: pid ${pid} is in a mount namespace of its own (${ns}), whose mounts amber does not dump`;
    }
  }
  if (option.imagesDir !== undefined) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(option.imagesDir);
    } catch {
      return undefined; // restore names the missing directory itself
    }
    const mounts = names.find((n) => /^mountpoints-\d+\.img$/.test(n));
    if (mounts) return `${option.word}: the image holds a mount namespace (${mounts}), which amber does not restore`;
  }
  return undefined;
}

/** pid and its descendants, as /proc shows them now. */
function treeOf(root: number): number[] {
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        queue.push(...fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
      } catch {
        // the thread went meanwhile
      }
    }
  }
  return out;
}

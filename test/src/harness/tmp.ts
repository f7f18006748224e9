import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const created = new Set<string>();

/**
 * A fresh directory named amber-test-<label>-XXXXXX under os.tmpdir(), or under `parent` (such as
 * /dev/shm, for images on tmpfs); removed by removeTmpDirs().
 */
export function makeTmpDir(label = '', parent = os.tmpdir()): string {
  const prefix = path.join(parent, `amber-test-${label ? `${label}-` : ''}`);
  const dir = fs.mkdtempSync(prefix);
  created.add(dir);
  return dir;
}

/** Removes every directory makeTmpDir() created, unless AMBER_KEEP_TMP is set (for debugging). */
export function removeTmpDirs(): void {
  if (process.env.AMBER_KEEP_TMP) return;
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
  created.clear();
}

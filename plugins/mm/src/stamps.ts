import { statSync } from 'node:fs';
import { AmberError, type FileRegistry, type FileStamp } from '@amber/core';

/** Set to 1 to restore even though a mapped file or the executable changed since the dump. */
export const ALLOW_CHANGED_FILES_ENV = 'AMBER_ALLOW_CHANGED_FILES';

/** Size and mtime of the file behind `link` (a /proc/PID/map_files or exe link: the mapped inode itself). */
export function stampOf(fileId: number, link: string): FileStamp {
  const st = statSync(link, { bigint: true });
  return { fileId, size: st.size, mtimeNs: st.mtimeNs };
}

/**
 * Refuses to restore code or data from a file that is not the one the task had mapped: a
 * program whose executable or libraries changed would run old code against new bytes.
 */
export function checkStamps(pid: number, stamps: FileStamp[], files: FileRegistry): void {
  if (process.env[ALLOW_CHANGED_FILES_ENV] === '1') return;
  for (const s of stamps) {
    const name = files.regular(s.fileId).name;
    const st = statSync(name, { bigint: true, throwIfNoEntry: false });
    let what: string | undefined;
    if (!st) what = 'is gone';
    else if (st.size !== s.size) what = `changed size since the dump (${s.size} -> ${st.size} bytes)`;
    else if (st.mtimeNs !== s.mtimeNs) what = 'was modified since the dump (mtime differs)';
    if (what) {
      throw new AmberError(`pid ${pid}: mapped file ${name} ${what}; set ${ALLOW_CHANGED_FILES_ENV}=1 to restore anyway`);
    }
  }
}

import * as fs from 'node:fs';
import * as path from 'node:path';
import { AmberError } from '../kernel/errors';
import { checkNotTraced } from '../task/tree';

/** The pid is being checkpointed already (by another amber, or traced by someone else). */
export class PidBusyError extends AmberError {}

export interface PidLock {
  release(): void;
}

/** Where per-pid locks live: root's /run/amber, else the user's runtime dir; none otherwise. */
function lockDir(): string | undefined {
  if ((process.geteuid?.() ?? 0) === 0) return '/run/amber';
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? path.join(runtime, 'amber') : undefined;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks): tells a live holder from a reused pid. */
function startTime(pid: number): string | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function commOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Takes the per-pid dump lock: two dumps of one pid at once would fight over its registers and
 * scratch page. The lock file holds the holder's pid and start time, so a lock left by an amber
 * that was killed is recognised as stale and taken over.
 */
export function lockPid(pid: number): PidLock {
  const dir = lockDir();
  const none: PidLock = { release() {} };
  if (!dir) {
    checkNotTraced(pid);
    return none;
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    checkNotTraced(pid);
    return none;
  }
  const file = path.join(dir, `dump-${pid}.lock`);
  const mine = `${process.pid} ${startTime(process.pid) ?? ''}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    // The lock appears with its holder already written in it (written aside, then linked into
    // place): a second dump that found it created but still empty would take it for stale.
    const aside = `${file}.${process.pid}`;
    try {
      fs.rmSync(aside, { force: true }); // left by a killed amber that had this pid
      fs.writeFileSync(aside, mine, { mode: 0o600, flag: 'wx' });
      fs.linkSync(aside, file);
      fs.rmSync(aside, { force: true });
      break;
    } catch (e) {
      fs.rmSync(aside, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        checkNotTraced(pid);
        return none;
      }
    }
    let holder: string[] = [];
    try {
      holder = fs.readFileSync(file, 'utf8').trim().split(' ');
    } catch {
      // removed meanwhile: try again
    }
    const holderPid = Number(holder[0]);
    if (holderPid > 0 && holder[1] && startTime(holderPid) === holder[1]) {
      throw new PidBusyError(`pid ${pid} is being checkpointed by amber pid ${holderPid} (${commOf(holderPid)}): wait for that dump to finish`);
    }
    fs.rmSync(file, { force: true }); // stale: its holder is gone
    if (attempt === 1) throw new PidBusyError(`pid ${pid}: cannot take the dump lock ${file}`);
  }
  try {
    checkNotTraced(pid);
  } catch (e) {
    fs.rmSync(file, { force: true });
    throw e;
  }
  return {
    release() {
      try {
        if (fs.readFileSync(file, 'utf8') === mine) fs.rmSync(file, { force: true });
      } catch {
        // already gone
      }
    },
  };
}

import { existsSync, readFileSync } from 'node:fs';

/** Waits until pid is gone (or a zombie). amber is not its parent, so it cannot collect the status. */
export async function waitForExit(pid: number, pollMs = 100): Promise<void> {
  for (;;) {
    if (!existsSync(`/proc/${pid}`)) return;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return;
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

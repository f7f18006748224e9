import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { targetsBinDir, targetsDir } from './paths';

const execFileAsync = promisify(execFile);

interface Job {
  source: string;
  output: string;
  tmp: string;
}

function staleTargets(): Job[] {
  fs.mkdirSync(targetsBinDir, { recursive: true });
  const jobs: Job[] = [];
  const files = fs.readdirSync(targetsDir).sort();
  // a target is stale when its source or any header beside it (target.h ...) is newer
  const headers = Math.max(0, ...files.filter((f) => f.endsWith('.h')).map((f) => fs.statSync(path.join(targetsDir, f)).mtimeMs));
  for (const file of files) {
    if (!file.endsWith('.c')) continue;
    const source = path.join(targetsDir, file);
    const output = path.join(targetsBinDir, file.slice(0, -2));
    const built = fs.statSync(output, { throwIfNoEntry: false });
    if (built && built.mtimeMs >= Math.max(fs.statSync(source).mtimeMs, headers)) continue;
    // Build beside the output and rename, so a concurrent run never executes a half-written file.
    jobs.push({ source, output, tmp: `${output}.tmp-${process.pid}` });
  }
  return jobs;
}

function gccArgs(job: Job): string[] {
  return ['-O1', '-g', '-Wall', '-pthread', '-o', job.tmp, job.source, '-lm'];
}

function failure(job: Job, err: unknown): Error {
  const stderr = (err as { stderr?: string | Buffer }).stderr?.toString() ?? String(err);
  return new Error(`gcc failed on ${path.basename(job.source)}:\n${stderr}`);
}

/** Compiles every test/targets/*.c that is missing from bin/ or older than its source. */
export function buildTargetsSync(): void {
  for (const job of staleTargets()) {
    try {
      execFileSync('gcc', gccArgs(job), { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      throw failure(job, err);
    }
    fs.renameSync(job.tmp, job.output);
  }
}

export async function buildTargets(): Promise<void> {
  await Promise.all(
    staleTargets().map(async (job) => {
      try {
        await execFileAsync('gcc', gccArgs(job));
      } catch (err) {
        throw failure(job, err);
      }
      fs.renameSync(job.tmp, job.output);
    }),
  );
}

import * as path from 'node:path';

/** Repository root: this file compiles to test/dist/harness/. */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const targetsDir = path.join(repoRoot, 'test', 'targets');
export const targetsBinDir = path.join(targetsDir, 'bin');
export const cliEntry = path.join(repoRoot, 'cli', 'bin', 'run.js');

export function targetPath(name: string): string {
  return path.join(targetsBinDir, name);
}

import * as path from 'node:path';
import { reportError } from './errors';

function verboseRequested(argv: string[]): boolean {
  return argv.some((a) => a === '-v' || a === '--verbose');
}

/** Runs the CLI with oclif and owns error reporting, so no oclif error formatting leaks out. */
export async function main(argv: string[]): Promise<void> {
  try {
    const oclif = await import('@oclif/core');
    // Under NODE_ENV=test|development oclif would look for ts-node to run src/ instead of dist/.
    oclif.settings.enableAutoTranspile = false;
    // No oclif user or linked plugins (~/.local/share/@amber/cli/package.json): amber runs as
    // root, and code named in a home directory is not amber's. Its plugins are found explicitly
    // (@amber/core PluginRegistry.discover).
    await oclif.run(argv, { root: path.resolve(__dirname, '..'), userPlugins: false, devPlugins: false });
    await oclif.flush();
  } catch (err) {
    const command = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : undefined;
    const { lines, exitCode } = reportError(err, verboseRequested(argv), command);
    for (const line of lines) process.stderr.write(`${line}\n`);
    process.exitCode = exitCode;
  }
}

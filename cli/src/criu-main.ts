import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { translateCriuArgv } from './criu-argv';
import { mountOptionMatters } from './criu-mounts';
import { main } from './main';

/** The CRIU release whose images and command line amber-criu speaks. */
const CRIU_VERSION = '4.2';

/**
 * amber-criu: CRIU's argv in, amber's commands run, CRIU's exit codes out (0, or 1 on any
 * failure), so that zdtm (--criu-bin), lxc-checkpoint and scripts can call amber instead.
 */
export async function criuMain(argv: string[]): Promise<void> {
  const home = process.env.HOME;
  const call = translateCriuArgv(argv, {
    config: { global: '/etc/criu/default.conf', user: home ? path.join(home, '.criu', 'default.conf') : undefined, env: process.env.CRIU_CONFIG_FILE },
  });
  if (call.kind === 'version') {
    const own = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`Version: ${CRIU_VERSION}\nGitID: amber-${own.version}\n`);
    return;
  }
  if (call.kind === 'refuse') {
    process.stderr.write(`${call.message}\n`);
    process.exitCode = 1;
    return;
  }
  if (call.kind === 'feature') {
    // amber's own check, in a child: its rows as JSON
    const r = spawnSync(process.execPath, [path.resolve(__dirname, '..', 'bin', 'run.js'), 'check', '--json'], { encoding: 'utf8' });
    const rows = (JSON.parse(r.stdout || '[]') as { name: string; present: boolean }[]).filter((f) => call.rows.includes(f.name));
    if (rows.some((f) => f.present)) return;
    process.stderr.write(`amber-criu: check --feature ${call.name}: missing (${call.rows.join(' or ')})\n`);
    process.exitCode = 1;
    return;
  }
  const matters = call.mountOption && mountOptionMatters(call.mountOption);
  if (matters) {
    process.stderr.write(`amber-criu: ${matters}\n`);
    process.exitCode = 1;
    return;
  }
  await main(call.argv);
  if (process.exitCode !== undefined && process.exitCode !== 0) {
    process.exitCode = 1;
    return;
  }
  // CRIU's --status-fd: one zero byte once the restored tree runs (or the dump is done), then closed
  if (call.statusFd !== undefined) {
    fs.writeSync(call.statusFd, Buffer.alloc(1));
    fs.closeSync(call.statusFd);
  }
}

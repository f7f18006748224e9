// amber installed as a tool (issue 15): `npm pack` of the CLI package, `npm install -g` of that
// tarball into a temporary prefix, and the installed `amber` dumps and restores a real process
// from a directory that has nothing of amber's. The tarball holds the one-file build (core, the
// built-in plugins, oclif); its one dependency, koffi, comes from npm's cache (`npm ci` put it
// there) or the registry.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cleanup, makeTmpDir, reap, removeTmpDirs, repoRoot, startTarget, verdict, WORKDIR } from '../harness';

after(async () => {
  await cleanup();
  removeTmpDirs();
});

const entry = require(join(repoRoot, 'cli', 'bin', 'entry.js')) as { bundleIsCurrent(): boolean };

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 120_000,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} -> ${r.status ?? r.signal} ${r.error?.message ?? ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Packs the CLI and installs it into a fresh prefix: the prefix. */
function install(): string {
  assert.ok(entry.bundleIsCurrent(), 'cli/dist/amber.js is missing or older than the build: run `npm run build` (npm test does)');
  const work = makeTmpDir('install');
  const packed = run('npm', ['pack', '-w', 'cli', '--pack-destination', work, '--json'], { cwd: repoRoot });
  const [{ filename }] = JSON.parse(packed.stdout) as { filename: string }[];
  const prefix = join(work, 'prefix');
  run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, filename)], { cwd: work, timeoutMs: 300_000 });
  return prefix;
}

let installed: string | undefined;
const prefix = () => (installed ??= install());

test('npm install -g of the packed CLI puts amber and amber-criu on PATH, carrying the engine itself (only koffi beside it)', () => {
  const bin = join(prefix(), 'bin');
  const cwd = makeTmpDir('install-cwd');
  const env = { PATH: `${bin}:${process.env.PATH ?? ''}` };
  const { name, version } = JSON.parse(readFileSync(join(repoRoot, 'cli', 'package.json'), 'utf8')) as { name: string; version: string };
  assert.equal(run('amber', ['--version'], { cwd, env }).stdout, `${name}/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
  assert.match(run('amber-criu', ['--version'], { cwd, env }).stdout, /^Version: 4\.\d+\nGitID: amber-/);
  // a command that loads oclif, the core and every built-in plugin
  const check = JSON.parse(run('amber', ['check', '--json'], { cwd, env }).stdout) as { name: string }[];
  assert.ok(check.length > 0, 'amber check lists features');
  const pkg = join(prefix(), 'lib', 'node_modules', '@amber', 'cli');
  assert.ok(existsSync(join(pkg, 'dist', 'amber.js')), 'the one-file build is installed');
  assert.deepEqual(readdirSync(join(pkg, 'node_modules')).filter((d) => !['koffi', '@koromix', '.package-lock.json'].includes(d)), [], 'dependencies installed beside the bundle');
});

test('the installed amber dumps and restores a real process (files, a pipe, a cwd) from another directory', async () => {
  const amber = join(prefix(), 'bin', 'amber');
  const cwd = makeTmpDir('install-run');
  const t = await startTarget('files', [WORKDIR]);
  const dir = makeTmpDir('install-images');
  run(amber, ['dump', '-t', String(t.pid), '-D', dir], { cwd });
  await reap(t.pid);
  run(amber, ['restore', '-D', dir, '-d'], { cwd });
  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

test('through sudo, the installed amber runs as root', (t) => {
  if (spawnSync('sudo', ['--version']).status !== 0) {
    t.skip('sudo is not installed here');
    return;
  }
  const r = run('sudo', ['-n', join(prefix(), 'bin', 'amber'), 'check', '--json'], { cwd: makeTmpDir('install-sudo') });
  assert.ok((JSON.parse(r.stdout) as unknown[]).length > 0);
});

// CRIU's configuration files as CRIU reads them (criu(8), CONFIGURATION FILES): the global file,
// the user's, $CRIU_CONFIG_FILE, --config FILE, then the command line, the later winning.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { translateCriuArgv, type CriuCall } from '@amber/cli';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amber-criu-config-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

const argvOf = (c: CriuCall): string[] => {
  assert.equal(c.kind, 'run', JSON.stringify(c));
  return c.kind === 'run' ? c.argv : [];
};

test('each file in its turn, the command line last: options add up, a single-valued one is the last given', () => {
  const global = file('global.conf', '# the machine\ntcp-established\ntimeout 3\nlog-file global.log\n');
  const user = file('user.conf', '\n   ghost-limit 4096   # bytes\ntimeout 4\n');
  const env = file('env.conf', 'log-file "my \\"own\\" log"\n');
  const config = { global, user, env };
  assert.deepEqual(argvOf(translateCriuArgv(['dump', '-t', '7', '-D', '/d'], { config })), [
    'dump', '--tcp-established', '--ghost-limit', '4096', '--timeout', '4', '-t', '7', '-D', '/d', '-o', '/d/my "own" log',
  ]);
  // the command line wins, and CRIU's --no-X undoes a file's X
  assert.deepEqual(argvOf(translateCriuArgv(['dump', '-t', '7', '-D', '/d', '--timeout', '9', '--no-tcp-established', '-o', 'cli.log'], { config })), [
    'dump', '--ghost-limit', '4096', '-t', '7', '-D', '/d', '--timeout', '9', '-o', '/d/cli.log',
  ]);
  // --no-default-config: only $CRIU_CONFIG_FILE and --config are read
  assert.deepEqual(argvOf(translateCriuArgv(['dump', '--no-default-config', '-t', '7', '-D', '/d'], { config })), ['dump', '-t', '7', '-D', '/d', '--timeout', '10', '-o', '/d/my "own" log']);
  // --config FILE: the default files are skipped too, FILE read after $CRIU_CONFIG_FILE
  const named = file('named.conf', 'leave-running\nlog-file named.log\n');
  assert.deepEqual(argvOf(translateCriuArgv(['dump', '--config', named, '-t', '7', '-D', '/d'], { config })), ['dump', '--leave-running', '-t', '7', '-D', '/d', '--timeout', '10', '-o', '/d/named.log']);
  assert.deepEqual(argvOf(translateCriuArgv(['dump', `--config=${named}`, '-t', '7', '-D', '/d'], { config: { global } })), ['dump', '--leave-running', '-t', '7', '-D', '/d', '--timeout', '10', '-o', '/d/named.log']);
  // a missing default file is no file at all
  assert.deepEqual(argvOf(translateCriuArgv(['check', '--all'], { config: { global: path.join(dir, 'none.conf') } })), ['check']);
});

test('a file that names what amber cannot do is refused in one line naming the option and the file; bad syntax names the line', () => {
  const refusal = (c: CriuCall): string => {
    assert.equal(c.kind, 'refuse', JSON.stringify(c));
    return c.kind === 'refuse' ? c.message : '';
  };
  const cg = file('cg.conf', 'manage-cgroups=full\n');
  assert.equal(refusal(translateCriuArgv(['dump', '-t', '7', '-D', '/d'], { config: { user: cg } })),
    `amber-criu: --manage-cgroups=full (in ${cg}): amber does not dump or restore cgroup membership (only --manage-cgroups=ignore, its behaviour)`);
  const ext = file('ext.conf', 'external tty[88:0]\n');
  assert.equal(refusal(translateCriuArgv(['dump'], { config: { env: ext } })), `amber-criu: --external: amber has no external resources yet (in ${ext})`);
  const two = file('two.conf', 'tcp-established\nwork-dir /a /b\n');
  assert.equal(refusal(translateCriuArgv(['dump'], { config: { global: two } })), `amber-criu: ${two}:2: more than one value for work-dir (quote a value holding spaces)`);
  const quote = file('quote.conf', 'work-dir "/a b\n');
  assert.equal(refusal(translateCriuArgv(['dump'], { config: { global: quote } })), `amber-criu: ${quote}:1: no closing quote`);
  const missing = path.join(dir, 'missing.conf');
  assert.equal(refusal(translateCriuArgv(['dump', '--config', missing])), `amber-criu: --config ${missing}: cannot read it (ENOENT)`);
  assert.equal(refusal(translateCriuArgv(['dump'], { config: { env: missing } })), `amber-criu: CRIU_CONFIG_FILE ${missing}: cannot read it (ENOENT)`);
  // a command is not an option: "dump" in a file reads as --dump
  const cmd = file('cmd.conf', 'dump\n');
  assert.equal(refusal(translateCriuArgv(['restore', '-D', '/d'], { config: { global: cmd } })), `amber-criu: --dump: unknown or unsupported CRIU option (in ${cmd})`);
});

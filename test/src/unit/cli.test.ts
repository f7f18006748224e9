import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { oclifMessage, renderValue, reportError, toJson } from '@amber/cli';
import { amber, assertOneLineError, describeAmber, makeTmpDir, removeTmpDirs, repoRoot, type AmberResult } from '../harness';

after(removeTmpDirs);

const COMMANDS = ['check', 'compare', 'dump', 'restore', 'show'];

// Preloaded into the CLI: on exit, lists every module file node loaded, so a test can tell
// whether --help pulled in the engine or a plugin.
const PROBE = `
const fs = require('node:fs');
process.on('exit', () => fs.writeFileSync(process.env.AMBER_TEST_MODULES_OUT, JSON.stringify(Object.keys(require.cache))));
`;

function loadedModules(args: string[]): { r: AmberResult; amberModules: string[]; all: string[] } {
  const dir = makeTmpDir('cli-probe');
  const probe = path.join(dir, 'probe.js');
  const out = path.join(dir, 'modules.json');
  fs.writeFileSync(probe, PROBE);
  const r = amber(args, { env: { NODE_OPTIONS: `--require ${probe}`, AMBER_TEST_MODULES_OUT: out } });
  const all = JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
  const engine = [path.join(repoRoot, 'core') + path.sep, path.join(repoRoot, 'plugins') + path.sep];
  // The one-file build (cli/dist/amber.js) loads no module file of the engine: its core and plugins
  // show as the ids it answers require() with, and the core as koffi, which only the core loads.
  const bundled = (f: string) => f.startsWith('amber-bundle:@amber/') || f.includes(`${path.sep}node_modules${path.sep}koffi${path.sep}`);
  return { r, all, amberModules: all.filter((f) => engine.some((prefix) => f.startsWith(prefix)) || bundled(f)) };
}

describe('amber CLI', () => {
  test('--help lists every command without loading the engine or any plugin', () => {
    const { r, amberModules } = loadedModules(['--help']);
    assert.equal(r.status, 0, describeAmber(['--help'], r));
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^\\s+${c}\\s`, 'm'), `help lists ${c}`);
    assert.deepEqual(amberModules, [], 'modules of @amber/core or a plugin loaded by --help');
  });

  test('a command\'s --help does not load the engine either', () => {
    const { r, amberModules } = loadedModules(['dump', '--help']);
    assert.equal(r.status, 0, describeAmber(['dump', '--help'], r));
    assert.match(r.stdout, /--images-dir/);
    assert.deepEqual(amberModules, []);
  });

  test('the module probe does see the engine when a command runs (control)', () => {
    const { r, amberModules } = loadedModules(['check', '--json']);
    assert.notEqual(r.status, null, describeAmber(['check', '--json'], r));
    assert.ok(amberModules.length > 0, 'amber check loads @amber/core');
  });

  test('the command itself (its #! line) starts node without NODE_EXTRA_CA_CERTS, which node would read before any JS', () => {
    // a file that is not there: node that still sees the variable warns about it on stderr
    const r = spawnSync(path.join(repoRoot, 'cli', 'bin', 'run.js'), ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(makeTmpDir('cli-ca'), 'none.pem') },
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^@amber\/cli\//);
    assert.doesNotMatch(r.stderr, /extra certs/i);
    const control = spawnSync(process.execPath, ['-e', '0'], { encoding: 'utf8', env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/none.pem' } });
    assert.match(control.stderr, /extra certs/i, 'control: node itself reads the variable');
  });

  test('--version prints the package line without loading oclif or the engine', () => {
    const { r, all } = loadedModules(['--version']);
    assert.equal(r.status, 0, describeAmber(['--version'], r));
    const { name, version } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'cli', 'package.json'), 'utf8')) as { name: string; version: string };
    assert.equal(r.stdout, `${name}/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
    assert.deepEqual(all.filter((f) => f.includes(`${path.sep}node_modules${path.sep}`)), [], 'modules loaded by --version');
  });

  test("--version's fast path prints what oclif prints for it", () => {
    // --verbose is no fast path: oclif answers that one
    const viaOclif = amber(['--version', '--verbose']);
    assert.equal(viaOclif.status, 0, describeAmber(['--version', '--verbose'], viaOclif));
    assert.equal(amber(['--version']).stdout, viaOclif.stdout);
  });

  test('dump without -t: one line naming the missing flag, exit 1', () => {
    const args = ['dump', '-D', makeTmpDir('cli-no-tree')];
    const r = amber(args);
    assertOneLineError(args, r, /missing required flag --tree/, 1);
    assert.equal(r.stdout, '');
  });

  test('an unknown command or flag is one line too', () => {
    assertOneLineError(['frobnicate'], amber(['frobnicate']), /command frobnicate not found/, 1);
    const args = ['check', '--bogus'];
    assertOneLineError(args, amber(args), /--bogus/, 1);
  });

  test('show on a file that is not an image: one amber: line, exit 1, no stack', () => {
    const file = path.join(makeTmpDir('cli-show'), 'notes.img');
    fs.writeFileSync(file, 'these are not the images you are looking for\n');
    const args = ['show', file];
    const r = amber(args);
    assertOneLineError(args, r, /notes\.img/, 1);
    assert.doesNotMatch(r.stderr, /internal error/, 'a bad image is the user\'s problem, reported as such');
  });

  test('show on a path that does not exist', () => {
    const args = ['show', '/nonexistent/amber-images'];
    assertOneLineError(args, amber(args), /\/nonexistent\/amber-images does not exist/, 1);
  });
});

describe('error reporting', () => {
  class AmberError extends Error {}
  class NoSuchProcessError extends AmberError {}

  test('an AmberError subclass is its message, on one line', () => {
    const r = reportError(new NoSuchProcessError('pid 4242: no such process'), false);
    assert.deepEqual(r, { lines: ['amber: pid 4242: no such process'], exitCode: 1 });
  });

  test('an unexpected error says so, and shows its stack only with -v', () => {
    const err = new TypeError("Cannot read properties of undefined (reading 'fd')");
    assert.deepEqual(reportError(err, false).lines, [
      "amber: Cannot read properties of undefined (reading 'fd') (internal error; rerun with -v for details)",
    ]);
    const verbose = reportError(err, true).lines;
    assert.equal(verbose.length, 2);
    assert.match(verbose[1], /TypeError: .*\n\s+at /);
  });

  test("oclif's multi-line parse errors fold into one sentence", () => {
    const msg = 'The following errors occurred:\n  Missing required flag images-dir\n  Missing required flag tree\nSee more help with --help';
    assert.equal(oclifMessage(msg, 'dump'), 'missing required flag --images-dir; missing required flag --tree (see amber dump --help)');
    assert.equal(oclifMessage('Parsing --tree \n\tExpected an integer but received: x\nSee more help with --help'), '--tree: Expected an integer but received: x');
  });
});

describe('show rendering', () => {
  test('addresses as hex, blobs as their size, short objects inline', () => {
    const lines = renderValue({
      vma: { start: 0x400000n, end: 0x401000n },
      data: Buffer.alloc(12),
      shown: { length: 3, base64: 'AAAA' },
      comm: 'counter',
      path: '/usr/lib/x86_64-linux-gnu/libc.so.6 (this one is long enough not to fit)',
    });
    assert.deepEqual(lines, [
      'vma: {start: 0x400000, end: 0x401000}',
      'data: <12 bytes>',
      'shown: <3 bytes>',
      'comm: counter',
      'path: "/usr/lib/x86_64-linux-gnu/libc.so.6 (this one is long enough not to fit)"',
    ]);
  });

  test('many short scalars pack several to a line', () => {
    const names = ['r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx'];
    const regs = Object.fromEntries(names.map((r, i) => [r, BigInt(i * 0x1111)]));
    assert.deepEqual(renderValue({ gpregs: regs }), [
      'gpregs:',
      '  r15: 0x0     r14: 0x1111  r13: 0x2222  r12: 0x3333  bp: 0x4444   bx: 0x5555   r11: 0x6666',
      '  r10: 0x7777  r9: 0x8888   r8: 0x9999   ax: 0xaaaa   cx: 0xbbbb',
    ]);
  });

  test('repeated array items collapse into a range', () => {
    const sig = { handler: 0n };
    assert.deepEqual(renderValue({ sigactions: [sig, sig, sig, { handler: 0x10n }, sig].map((s) => ({ ...s, pad: 'x'.repeat(30) })) }), [
      'sigactions:',
      `  [0..2] {handler: 0x0, pad: ${'x'.repeat(30)}}`,
      `  [3] {handler: 0x10, pad: ${'x'.repeat(30)}}`,
      `  [4] {handler: 0x0, pad: ${'x'.repeat(30)}}`,
    ]);
  });

  test('JSON keeps 64-bit values exact as strings and blobs as base64', () => {
    assert.deepEqual(JSON.parse(toJson({ ip: 0xffffffffff600000n, raw: Buffer.from('hi') })), { ip: '18446744073699065856', raw: 'aGk=' });
  });
});

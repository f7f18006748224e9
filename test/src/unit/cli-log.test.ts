import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { markLogged, reportError } from '@amber/cli';
import { amber, describeAmber, makeTmpDir, removeTmpDirs } from '../harness';

after(removeTmpDirs);

const COMMANDS = ['check', 'compare', 'dump', 'pre-dump', 'restore', 'show'];

test('help mentions --log-file only where the command has it', () => {
  for (const command of COMMANDS) {
    const r = amber([command, '--help']);
    assert.equal(r.status, 0, describeAmber([command, '--help'], r));
    const hasFlag = /^\s+-o, --log-file=FILE\s/m.test(r.stdout);
    if (!hasFlag) assert.doesNotMatch(r.stdout, /log-file/, `${command} --help mentions a --log-file it lacks:\n${r.stdout}`);
    assert.match(r.stdout, /^\s+-v, --verbose\s/m, `${command} has -v`);
  }
  // the engine commands have it, and their -v says where the log goes
  for (const command of ['dump', 'pre-dump', 'restore']) {
    const r = amber([command, '--help']);
    assert.match(r.stdout, /^\s+-o, --log-file=FILE\s/m, `${command} has -o`);
    assert.match(r.stdout, /debug log lines/);
  }
});

for (const verbose of [false, true]) {
  test(`with -o FILE${verbose ? ' -v' : ''} an error is one line on stderr, and in the log file once`, () => {
    const dir = makeTmpDir('cli-log');
    const logFile = path.join(dir, 'amber.log');
    const args = ['dump', '-t', '4194303', '-D', path.join(dir, 'images'), '-o', logFile, ...(verbose ? ['-v'] : [])];
    const r = amber(args);
    assert.equal(r.status, 1, describeAmber(args, r));
    assert.equal(r.stderr, 'amber: pid 4194303: no such process\n', describeAmber(args, r));
    const log = fs.readFileSync(logFile, 'utf8');
    assert.equal(log.split('pid 4194303: no such process').length - 1, 1, `the error once in the log:\n${log}`);
    assert.match(log, /^error: NoSuchProcessError: pid 4194303: no such process\n\s+at /m, 'with its stack');
  });
}

test('-v without -o still puts the stack on stderr; an error logged to the file does not', () => {
  const err = new TypeError('boom');
  assert.equal(reportError(err, true).lines.length, 2);
  markLogged(err);
  assert.deepEqual(reportError(err, true).lines, ['amber: boom (internal error; its stack is in the log file)']);
});

test("dump --help says what its examples and --only/--skip do, restore --help what --skip does", () => {
  const dump = amber(['dump', '--help']).stdout.replace(/\s+/g, ' ');
  assert.match(dump, /Checkpoint 4242 and its children; they are killed once the images are complete \$ amber dump -t 4242 -D \/tmp\/ckpt /);
  assert.match(dump, /A memory-only snapshot for inspection \(show, compare\); 4242 keeps running\. It cannot be restored to a working process \$ amber dump -t 4242 -D \/tmp\/snap --leave-running --only mm/);
  assert.match(dump, /--only=NAME\[,NAME\.\.\.\]\.\.\. dump only these resource plugins \(e\.g\. mm,fs\): a partial snapshot for inspection, which restore refuses unless the rest is skipped, and then the process lacks those resources/);
  const restore = amber(['restore', '--help']).stdout.replace(/\s+/g, ' ');
  assert.match(restore, /--skip=NAME\[,NAME\.\.\.\]\.\.\. do not restore these resource plugins \(allows restoring a partial image; the process comes back without what they hold\)/);
});

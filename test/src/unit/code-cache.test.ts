import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { makeTmpDir, removeTmpDirs, repoRoot } from '../harness';

after(removeTmpDirs);

const CODE_CACHE = path.join(repoRoot, 'cli', 'bin', 'code-cache.js');

/** Runs node with amber's code cache (or a copy of it) preloaded and prints what `mod` exports. */
function load(cacheHome: string, mod: string, codeCache = CODE_CACHE): string {
  const r = spawnSync(process.execPath, ['--require', codeCache, '-e', `console.log(require(${JSON.stringify(mod)}))`], {
    encoding: 'utf8',
    env: { ...process.env, XDG_CACHE_HOME: cacheHome, AMBER_CODE_CACHE: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const cacheFiles = (home: string): string[] => (fs.existsSync(path.join(home, 'amber')) ? fs.readdirSync(path.join(home, 'amber')) : []);

describe('code cache (cli/bin/code-cache.js)', () => {
  test('is written once, private to the user, and a module changed since runs its new code', () => {
    const dir = makeTmpDir('code-cache');
    const home = path.join(dir, 'cache');
    const mod = path.join(dir, 'answer.js');
    fs.writeFileSync(mod, 'module.exports = "first " + (() => 41 + 1)();\n');
    assert.equal(load(home, mod), 'first 42');
    const [file] = cacheFiles(home);
    assert.ok(file, 'a cache file was written');
    const cached = path.join(home, 'amber', file);
    assert.equal(fs.statSync(cached).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(home, 'amber')).mode & 0o777, 0o700);
    const index = JSON.parse(fs.readFileSync(cached).subarray(4, 4 + fs.readFileSync(cached).readUInt32LE(0)).toString('utf8')) as Record<string, unknown>;
    assert.ok(index[mod], 'the module is in the cache');

    // run from the cache: the file is not rewritten
    const before = fs.statSync(cached).mtimeMs;
    assert.equal(load(home, mod), 'first 42');
    assert.equal(fs.statSync(cached).mtimeMs, before);

    // same length, other code, later mtime: the cached code must not run
    fs.writeFileSync(mod, 'module.exports = "other " + (() => 40 + 3)();\n');
    fs.utimesSync(mod, new Date(), new Date(Date.now() + 5000));
    assert.equal(load(home, mod), 'other 43');
  });

  test('a damaged cache file (garbage, an index longer than the file, data cut short) is written anew by the next run', () => {
    for (const damage of ['garbage', 'long index', 'cut short'] as const) {
      const dir = makeTmpDir('code-cache-damaged');
      const home = path.join(dir, 'cache');
      const mod = path.join(dir, 'answer.js');
      fs.writeFileSync(mod, 'module.exports = "fine " + (() => 6 * 7)();\n');
      assert.equal(load(home, mod), 'fine 42');
      const cached = path.join(home, 'amber', cacheFiles(home)[0]);
      const good = fs.readFileSync(cached);
      if (damage === 'garbage') fs.writeFileSync(cached, Buffer.from('\x10\x00\x00\x00not json at all!'));
      else if (damage === 'long index') fs.writeFileSync(cached, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0x7f]), good.subarray(4)]));
      else fs.writeFileSync(cached, good.subarray(0, good.length - 16));
      // the damaged run still works, compiling without the cache, and writes a whole cache at exit
      assert.equal(load(home, mod), 'fine 42', damage);
      const again = fs.readFileSync(cached);
      const index = JSON.parse(again.subarray(4, 4 + again.readUInt32LE(0)).toString('utf8')) as Record<string, [number, number]>;
      const [offset, length] = index[mod];
      assert.ok(4 + again.readUInt32LE(0) + offset + length <= again.length, `${damage}: the rewritten cache holds the module's data`);
      // and the run after it compiles nothing: the file stays as it is
      const mtime = fs.statSync(cached).mtimeMs;
      assert.equal(load(home, mod), 'fine 42');
      assert.equal(fs.statSync(cached).mtimeMs, mtime, `${damage}: a run from the repaired cache rewrites nothing`);
    }
  });

  test('a module that calls import() still can on the next run (node compiles it, not the cache)', () => {
    const dir = makeTmpDir('code-cache');
    const home = path.join(dir, 'cache');
    fs.writeFileSync(path.join(dir, 'esm.mjs'), 'export const v = 7;\n');
    const mod = path.join(dir, 'dynamic.js');
    fs.writeFileSync(mod, 'module.exports = "x"; import("./esm.mjs").then((m) => console.log("imported", m.v), (e) => { console.log("failed", e.code); process.exitCode = 1; });\n');
    for (let run = 0; run < 2; run++) assert.equal(load(home, mod), 'x\nimported 7', `run ${run + 1}`);
  });

  test('each installation keeps its own cache file, holding only what it loaded', () => {
    // every start reads the whole file: one shared by all checkouts had grown to 11 MB
    const dir = makeTmpDir('code-cache-installs');
    const home = path.join(dir, 'cache');
    const other = path.join(dir, 'other-install', 'bin');
    fs.mkdirSync(other, { recursive: true });
    fs.copyFileSync(CODE_CACHE, path.join(other, 'code-cache.js'));
    const mine = path.join(dir, 'mine.js');
    const theirs = path.join(dir, 'theirs.js');
    fs.writeFileSync(mine, 'module.exports = "mine";\n');
    fs.writeFileSync(theirs, 'module.exports = "theirs";\n');
    assert.equal(load(home, mine), 'mine');
    assert.equal(load(home, theirs, path.join(other, 'code-cache.js')), 'theirs');
    const files = cacheFiles(home);
    assert.equal(files.length, 2, `cache files: ${files.join(', ')}`);
    const indexOf = (f: string) => {
      const blob = fs.readFileSync(path.join(home, 'amber', f));
      return Object.keys(JSON.parse(blob.subarray(4, 4 + blob.readUInt32LE(0)).toString('utf8')) as object);
    };
    assert.deepEqual(files.map(indexOf).sort(), [[mine], [theirs]].sort());
  });

  test('the cache file of an installation that is gone is removed when another is written; one still there is kept', () => {
    const dir = makeTmpDir('code-cache-gone');
    const home = path.join(dir, 'cache');
    const installs = ['gone', 'kept'].map((name) => {
      const at = path.join(dir, name);
      fs.mkdirSync(path.join(at, 'bin'), { recursive: true });
      fs.copyFileSync(CODE_CACHE, path.join(at, 'bin', 'code-cache.js'));
      fs.writeFileSync(path.join(at, 'mod.js'), `module.exports = ${JSON.stringify(name)};\n`);
      assert.equal(load(home, path.join(at, 'mod.js'), path.join(at, 'bin', 'code-cache.js')), name);
      return at;
    });
    const before = cacheFiles(home);
    assert.equal(before.length, 2, before.join(', '));
    fs.rmSync(installs[0], { recursive: true });
    // the next run that writes its own file (mine.js is new to this installation) sweeps
    const mine = path.join(dir, 'mine.js');
    fs.writeFileSync(mine, 'module.exports = "mine";\n');
    assert.equal(load(home, mine), 'mine');
    const after = cacheFiles(home);
    assert.equal(after.length, 2, `the gone installation's file left, this one's made: ${after.join(', ')}`);
    assert.ok(after.some((f) => before.includes(f)), 'the kept installation keeps its file');
    assert.equal(load(home, path.join(installs[1], 'mod.js'), path.join(installs[1], 'bin', 'code-cache.js')), 'kept');
  });

  test("the one-file build's code is kept per command: one made by --help does not stand for a dump's", () => {
    const dir = makeTmpDir('code-cache-commands');
    const home = path.join(dir, 'cache');
    const bundle = path.join(dir, 'cli', 'dist', 'amber.js');
    fs.mkdirSync(path.dirname(bundle), { recursive: true });
    fs.writeFileSync(bundle, 'module.exports = "bundle";\n');
    // `node -e CODE x WORDS...`: process.argv is [node, x, WORDS...], as run.js's is [node, run.js, WORDS...]
    const run = (...words: string[]) => {
      const r = spawnSync(process.execPath, ['--require', CODE_CACHE, '-e', `console.log(require(${JSON.stringify(bundle)}))`, 'x', ...words], {
        encoding: 'utf8',
        env: { ...process.env, XDG_CACHE_HOME: home, AMBER_CODE_CACHE: '1' },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'bundle');
    };
    const keys = () => {
      const blob = fs.readFileSync(path.join(home, 'amber', cacheFiles(home)[0]));
      return Object.keys(JSON.parse(blob.subarray(4, 4 + blob.readUInt32LE(0)).toString('utf8')) as object).sort();
    };
    run('--help');
    assert.deepEqual(keys(), [`${bundle}\0 --help`]);
    run('dump', '-t', '1');
    assert.deepEqual(keys(), [`${bundle}\0 --help`, `${bundle}\0dump`]);
    // a second dump runs from its own entry: nothing is written
    const cached = path.join(home, 'amber', cacheFiles(home)[0]);
    const mtime = fs.statSync(cached).mtimeMs;
    run('dump', '-t', '2');
    assert.equal(fs.statSync(cached).mtimeMs, mtime);
    assert.equal(cacheFiles(home).length, 1);
    // eight commands at most (a mistyped one makes an entry too): those written longest ago go
    for (let i = 0; i < 8; i++) run(`cmd${i}`);
    assert.deepEqual(keys(), [`${bundle}\0cmd0`, ...Array.from({ length: 7 }, (_, i) => `${bundle}\0cmd${i + 1}`)].sort());
  });

  test('a cache directory others can write to is not used', () => {
    const dir = makeTmpDir('code-cache-open');
    const home = path.join(dir, 'cache');
    fs.mkdirSync(path.join(home, 'amber'), { recursive: true });
    fs.chmodSync(path.join(home, 'amber'), 0o777);
    const mod = path.join(dir, 'm.js');
    fs.writeFileSync(mod, 'module.exports = 7;\n');
    assert.equal(load(home, mod), '7');
    assert.deepEqual(cacheFiles(home), []);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { holdsPrivatePages, parseMaps, readsPrivatePages } from '@amber/core';

// In a node of its own: node's binary's pages before and after, then work that needs code of the
// binary the call dropped (compiling, regular expressions, ICU, zlib, a new module), and that
// reads its relocated read-only data (which must not have been dropped: a segfault if it was).
const CHILD = `
const { readFileSync } = require('node:fs');
const { releaseCleanCodePages } = require(process.argv[1]);
function nodeMappings() {
  const out = [];
  let cur;
  for (const line of readFileSync('/proc/self/smaps', 'latin1').split('\\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ (\\S+) \\S+ \\S+ \\d+\\s+(.*)$/.exec(line);
    if (m) { cur = m[3] === process.execPath ? { at: m[1], perms: m[2], rss: 0, anon: 0 } : undefined; if (cur) out.push(cur); continue; }
    const f = /^(Rss|Anonymous):\\s+(\\d+) kB/.exec(line);
    if (f && cur) cur[f[1] === 'Rss' ? 'rss' : 'anon'] = Number(f[2]);
  }
  return out;
}
const before = nodeMappings();
const dropped = releaseCleanCodePages();
const after = nodeMappings();
const work = [
  new Function('a', 'return a.map((x) => x * 2).join(",")')([1, 2, 3]),
  /(\\d+)-(\\w+)/u.exec('12-ab')[2],
  new Intl.NumberFormat('de-DE').format(1234567.5),
  'Ä'.normalize('NFD').length,
  require('node:zlib').gunzipSync(require('node:zlib').gzipSync('amber')).toString(),
  typeof require('node:http').createServer,
].join(' ');
process.stdout.write(JSON.stringify({ before, after, dropped, work }));
`;

interface Mapping { at: string; perms: string; rss: number; anon: number }

test("node's clean code pages leave the resident set, its private ones stay, and node still runs", () => {
  const r = spawnSync(process.execPath, ['-e', CHILD, require.resolve('@amber/core')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.signal, null, `the child died of ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const { before, after, dropped, work } = JSON.parse(r.stdout) as { before: Mapping[]; after: Mapping[]; dropped: number; work: string };
  assert.equal(work, '2,4,6 ab 1.234.567,5 2 amber function');
  const sum = (ms: Mapping[], f: (m: Mapping) => number) => ms.reduce((n, m) => n + f(m), 0);
  const readOnly = (ms: Mapping[]) => ms.filter((m) => m.perms === 'r-xp' || m.perms === 'r--p');
  // start-up alone leaves well over 10 MB of node's binary resident
  assert.ok(sum(readOnly(before), (m) => m.rss) > 10_240, `resident before: ${sum(readOnly(before), (m) => m.rss)} kB`);
  assert.ok(sum(readOnly(after), (m) => m.rss) < sum(readOnly(before), (m) => m.rss) / 2, `resident after: ${sum(readOnly(after), (m) => m.rss)} kB`);
  const clean = readOnly(before).filter((m) => m.anon === 0);
  assert.ok(dropped > 0 && clean.length > 0);
  // what holds private pages (RELRO: relocated, then made read-only) was left as it was
  for (const m of before.filter((b) => b.anon > 0)) {
    const now = after.find((a) => a.at === m.at);
    assert.ok(now && now.anon === m.anon, `mapping at 0x${m.at} (${m.perms}): ${m.anon} kB private before, ${now?.anon} after`);
  }
  assert.ok(readOnly(before).some((m) => m.anon > 0), "no read-only mapping of node's with private pages here: the test would not see them kept");
});

test('the one-ioctl check (PAGEMAP_SCAN) finds private pages exactly where reading every pagemap entry does', () => {
  // this process's file mappings (node's binary and libraries: clean text, relocated read-only
  // data, written data): their private pages stay as they are while the test looks, where those
  // of anonymous memory could come and go with the allocations in between
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const maps = parseMaps(readFileSync('/proc/self/maps', 'utf8')).filter((m) => m.path.startsWith('/'));
    let private_ = 0;
    for (const m of maps) {
      const start = Number(m.start);
      const len = Number(m.end) - start;
      const scanned = holdsPrivatePages(fd, start, len);
      assert.equal(scanned, readsPrivatePages(fd, start, len), `${m.start.toString(16)} ${m.perms} ${m.path}`);
      if (scanned) private_++;
    }
    // both kinds were seen, so the agreement means something
    assert.ok(private_ > 0 && private_ < maps.length, `${private_} of ${maps.length} mappings hold private pages`);
  } finally {
    closeSync(fd);
  }
});

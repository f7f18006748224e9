import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, cleanup, critDecode, describeAmber, makeTmpDir, startTarget, verdict, WORKDIR } from '../harness';

after(cleanup);

/*
 * `amber show` must decode every image amber writes, which means loading the plugins that
 * register their image types (pipes-data, file-locks, memfd, mm-shmem ...); crit must decode
 * every framed one too (they carry CRIU's magics), except amber's own mm-shmem, which CRIU has
 * no image for.
 */
const AMBER_ONLY = new Set(['shmem.img']);

for (const [name, targetArgs] of [['files', [WORKDIR]], ['mem_shared', [WORKDIR]], ['tree', []]] as const) {
  test(`amber show and crit decode every image of a dump of the ${name} target`, async () => {
    const t = await startTarget(name, [...targetArgs]);
    const dir = makeTmpDir(`show-${name}`);
    const d = amber(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
    assert.equal(d.status, 0, describeAmber(['dump'], d));
    const images = readdirSync(dir).filter((f) => f.endsWith('.img'));
    assert.ok(images.length >= 8, images.join(', '));
    const human = amber(['show', dir]);
    assert.equal(human.status, 0, describeAmber(['show', dir], human));
    const args = ['show', dir, '--json'];
    const r = amber(args);
    assert.equal(r.status, 0, describeAmber(args, r));
    const shown = JSON.parse(r.stdout) as { name: string; image?: { type: string; entries: unknown[] }; error?: string }[];
    assert.deepEqual(shown.map((s) => s.name), [...images].sort());
    for (const { name: f, image, error } of shown) {
      assert.ok(image, `${f}: ${error}`);
      if (f.startsWith('pages-')) {
        assert.equal(image.type, 'pages');
        continue;
      }
      assert.notEqual(image.type, 'pages', f);
      if (AMBER_ONLY.has(f)) continue;
      const crit = critDecode(join(dir, f));
      assert.equal(crit.entries.length, image.entries.length + (f.startsWith('pagemap-') ? 1 : 0), `${f}: crit and amber see the same entries`);
    }
    // one image on its own too (the plugin's type, found by its magic)
    const one = images.find((f) => /^(pipes-data|file-locks|shmem|memfd)\.img$/.test(f)) ?? 'pstree.img';
    const single = amber(['show', join(dir, one)]);
    assert.equal(single.status, 0, describeAmber(['show', one], single));
    const v = await verdict(t);
    assert.ok(v.passed, v.lines.join(' | '));
  });
}

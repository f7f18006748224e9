import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { amber, cleanup, describeAmber, makeTmpDir, startTarget, verdict, WORKDIR , critDecode } from '../harness';

after(cleanup);

type Json = Record<string, unknown>;

const crit = critDecode;

test("Debian's crit decodes every image of a real dump, with the values amber shows", async () => {
  const t = await startTarget('skeleton', [WORKDIR]);
  const dir = makeTmpDir('crit');
  const d = amber(['dump', '-t', String(t.pid), '-D', dir, '--leave-running']);
  assert.equal(d.status, 0, d.stderr);
  const maps = readFileSync(`/proc/${t.pid}/maps`, 'utf8').trim().split('\n');

  const images = readdirSync(dir).filter((f) => f.endsWith('.img') && !f.startsWith('pages-'));
  for (const f of images) crit(join(dir, f));

  const pstree = crit(join(dir, 'pstree.img'));
  assert.equal(pstree.magic, 'PSTREE');
  assert.equal(pstree.entries[0].pid, t.pid);

  const core = crit(join(dir, `core-${t.pid}.img`)).entries[0] as { thread_info: { gpregs: Json; fpregs: Json }; tc: Json };
  const args = ['show', join(dir, `core-${t.pid}.img`), '--json'];
  const shown = amber(args);
  assert.equal(shown.status, 0, describeAmber(args, shown));
  const ours = JSON.parse(shown.stdout) as { entries: { threadInfo: { gpregs: { ip: string } } }[] };
  assert.equal(BigInt(core.thread_info.gpregs.ip as string), BigInt(ours.entries[0].threadInfo.gpregs.ip), 'rip as crit and amber show see it');
  assert.equal(core.tc.comm, 'skeleton');
  // skeleton sets FTZ|DAZ and rounds upward: MXCSR control bits as the target set them
  assert.equal(Number(core.thread_info.fpregs.mxcsr) & 0xe040, 0xc040);

  const mm = crit(join(dir, `mm-${t.pid}.img`)).entries[0] as { vmas: Json[] };
  // as CRIU does, [vvar] and the [vvar_vclock] after it are one entry
  const joined = maps.filter((l, i) => !(l.endsWith('[vvar_vclock]') && maps[i - 1]?.endsWith('[vvar]'))).length;
  assert.equal(mm.vmas.length, joined, 'one vma per line of /proc/PID/maps, [vvar] and [vvar_vclock] in one');

  const files = crit(join(dir, 'files.img')).entries as { reg?: { name: string } }[];
  const names = files.map((f) => f.reg?.name);
  assert.ok(names.includes(join(t.workdir, 'skeleton.log')), `the log file is in files.img: ${names.join(', ')}`);
  assert.ok(names.includes('/dev/null'));

  const pagemap = crit(join(dir, `pagemap-${t.pid}.img`)).entries as { pages_id?: number; nr_pages?: number }[];
  const pages = pagemap.slice(1).reduce((n, e) => n + Number(e.nr_pages), 0);
  assert.ok(pages >= (64 << 20) / 4096, `the 64 MiB heap is in the pagemap (${pages} pages)`);

  const v = await verdict(t);
  assert.ok(v.passed, v.lines.join(' | '));
});

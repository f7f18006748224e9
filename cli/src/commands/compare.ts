import { Flags } from '@oclif/core';
import type { Difference } from '@amber/core';
import { AmberCommand, pluginFlag } from '../base';
import { QuietExit } from '../errors';
import { plural } from '../format';
import { toJson } from '../render';

export default class Compare extends AmberCommand {
  static override summary = 'Compare a running process tree with an image directory';
  static override description =
    'Exits 0 when the live tree matches the images, 1 with a list of differences otherwise. ' +
    'Works on partial images (dumped with --only).';
  static override examples = ['<%= config.bin %> compare -t 4242 -D /tmp/ckpt', '<%= config.bin %> compare -t 4242 -D /tmp/ckpt --pages --json'];

  static override flags = {
    tree: Flags.integer({ char: 't', description: 'pid of the root of the live tree', required: true, min: 1, helpValue: 'PID' }),
    'images-dir': Flags.string({ char: 'D', description: 'directory holding the images', required: true, helpValue: 'DIR' }),
    pages: Flags.boolean({ description: 'compare memory contents page by page too (slower)' }),
    'shell-job': Flags.boolean({ char: 'j', description: "the tree was restored with -j: its root's outside session and group are the restoring shell's now, not a difference" }),
    json: Flags.boolean({ description: 'print the differences as JSON' }),
    plugin: pluginFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Compare);
    const core = await this.loadCore();
    const registry = this.discoverPlugins(core, flags.plugin);
    const diffs = await core.compare({ pid: flags.tree, imagesDir: flags['images-dir'], pages: flags.pages, shellJob: flags['shell-job'] }, registry);
    if (flags.json) this.log(toJson(diffs));
    else if (diffs.length === 0) this.log(`pid ${flags.tree} matches ${flags['images-dir']}`);
    else this.log(describeDifferences(diffs, flags.tree, flags['images-dir']).join('\n'));
    // A difference is an answer, not an error: like diff(1), exit 1 with nothing on stderr.
    if (diffs.length) throw new QuietExit(1);
  }
}

/** Differences grouped by plugin and pid, one `what: expected X, found Y` line each. */
export function describeDifferences(diffs: Difference[], pid: number, dir: string): string[] {
  const lines = [`pid ${pid} differs from ${dir} in ${plural(diffs.length, 'place')}:`];
  const groups = new Map<string, Difference[]>();
  for (const d of diffs) {
    const key = `${d.plugin}, pid ${d.pid}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  for (const [key, group] of groups) {
    lines.push(`  ${key}:`);
    for (const d of group) lines.push(`    ${d.what}: expected ${d.expected}, found ${d.actual}`);
  }
  return lines;
}

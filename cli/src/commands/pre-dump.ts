import { Flags } from '@oclif/core';
import { pagesViaFlag } from '../pages-flags';
import { EngineCommand, pluginFlag } from '../base';
import { freezeTimeoutFlag, freezeTimeoutMs } from '../timeout-flag';
import { counterLine } from '../format';

export default class PreDump extends EngineCommand {
  static override summary = 'Save a running tree\'s memory and track what it changes, for a later incremental dump';
  static override description =
    'Writes the memory of the tree rooted at PID into DIR and lets it run on, with dirty-page tracking armed in it ' +
    '(soft-dirty bits where the kernel has them, else a write-protect-async userfaultfd that amber keeps at a high fd ' +
    'of the task). A later `dump --prev-images-dir DIR` (or another pre-dump) writes only the pages changed since. ' +
    'A final dump removes the tracking. A pre-dump that fails leaves the tree as it was.';
  static override examples = [
    '<%= config.bin %> pre-dump -t 4242 -D /tmp/ckpt/1',
    '<%= config.bin %> pre-dump -t 4242 -D /tmp/ckpt/2 --prev-images-dir ../1',
    '<%= config.bin %> dump -t 4242 -D /tmp/ckpt/3 --prev-images-dir ../2 --track-mem',
  ];

  static override flags = {
    tree: Flags.integer({ char: 't', description: 'pid of the root of the tree', required: true, min: 1, helpValue: 'PID' }),
    'images-dir': Flags.string({ char: 'D', description: 'directory to write the images into', required: true, helpValue: 'DIR' }),
    'prev-images-dir': Flags.string({
      description: 'previous pre-dump of this tree, relative to DIR unless absolute: pages unchanged since it are not written again',
      helpValue: 'DIR',
    }),
    'track-mem': Flags.boolean({ description: 'track memory changes (always on for pre-dump; accepted for CRIU compatibility)', default: true }),
    timeout: freezeTimeoutFlag,
    'pages-via': pagesViaFlag,
    plugin: pluginFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(PreDump);
    const core = await this.loadCore();
    const log = this.makeLogger(core, flags.verbose, flags['log-file']);
    const registry = this.discoverPlugins(core, flags.plugin);
    await this.reported(core, () => core.preDump(
      { pid: flags.tree, imagesDir: flags['images-dir'], prevImagesDir: flags['prev-images-dir'], pagesVia: flags['pages-via'],
        freezeTimeoutMs: freezeTimeoutMs(flags.timeout),
        log, progress: this.progress },
      registry,
    ), (report) => {
      this.progressLine.clear();
      this.log(`Pre-dumped the memory of pid ${report.pids.join(', ')} into ${report.imagesDir} in ${report.seconds.toFixed(2)} s (left running, tracking changes)`);
      const counters = counterLine(report.counters);
      if (counters) this.log(`  ${counters}`);
    });
  }
}

import { Flags } from '@oclif/core';
import { pagesViaFlag } from '../pages-flags';
import { EngineCommand, listFlag, pluginFlag } from '../base';
import { freezeTimeoutFlag, freezeTimeoutMs } from '../timeout-flag';
import { counterLine, plural } from '../format';
import { networkLockFlag } from '../network-lock-flag';

export default class Dump extends EngineCommand {
  static override summary = 'Checkpoint a process tree into an image directory';
  static override description =
    'Freezes the tree rooted at PID, writes its state into DIR and kills it (unless --leave-running). ' +
    'A dump that fails leaves the tree running as it was.';
  static override examples = [
    { description: 'Checkpoint 4242 and its children; they are killed once the images are complete', command: '<%= config.bin %> dump -t 4242 -D /tmp/ckpt' },
    { description: 'Checkpoint vim (pid 4242), started from an interactive shell on a terminal', command: '<%= config.bin %> dump -j -t 4242 -D /tmp/vim' },
    {
      description: 'A memory-only snapshot for inspection (show, compare); 4242 keeps running. It cannot be restored to a working process',
      command: '<%= config.bin %> dump -t 4242 -D /tmp/snap --leave-running --only mm',
    },
  ];

  static override flags = {
    tree: Flags.integer({ char: 't', description: 'pid of the root of the tree to dump', required: true, min: 1, helpValue: 'PID' }),
    'images-dir': Flags.string({ char: 'D', description: 'directory to write the images into', required: true, helpValue: 'DIR' }),
    'leave-running': Flags.boolean({ description: 'let the tree continue after the dump instead of killing it' }),
    'tcp-established': Flags.boolean({ description: 'dump established TCP connections (TCP repair mode); without it a dump holding one is refused' }),
    'skip-in-flight': Flags.boolean({ description: 'drop TCP connections still being set up and those a listener has not accepted, instead of refusing the dump' }),
    'ghost-limit': Flags.integer({ description: 'largest unlinked open file whose contents are saved, in bytes (default 1 MiB)', min: 0, helpValue: 'BYTES' }),
    'prev-images-dir': Flags.string({
      description: 'previous (pre-)dump of this tree, relative to DIR unless absolute: pages unchanged since it are not written again (DIR/parent links to it)',
      helpValue: 'DIR',
    }),
    'track-mem': Flags.boolean({ description: 'use the kernel\'s dirty-page tracking; with --leave-running, keep it armed for a further incremental dump' }),
    only: listFlag('dump only these resource plugins (e.g. mm,fs): a partial snapshot for inspection, which restore refuses unless the rest is skipped, and then the process lacks those resources'),
    skip: listFlag('do not dump these resource plugins (a partial snapshot, as with --only)'),
    'shell-job': Flags.boolean({
      char: 'j',
      description: "the tree is a job started from a shell: its root's session and group leader (the shell) and its terminal stay outside; restore it with -j too",
    }),
    'ext-unix-sk': Flags.boolean({ description: 'dump unix sockets connected to processes outside the tree (a datagram socket is reconnected to its peer\'s name at restore)' }),
    'network-lock': networkLockFlag,
    timeout: freezeTimeoutFlag,
    'pages-via': pagesViaFlag,
    plugin: pluginFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Dump);
    const core = await this.loadCore();
    const log = this.makeLogger(core, flags.verbose, flags['log-file']);
    const registry = this.discoverPlugins(core, flags.plugin);
    await this.reported(core, () => core.dump(
      {
        pid: flags.tree,
        imagesDir: flags['images-dir'],
        leaveRunning: flags['leave-running'],
        ghostLimit: flags['ghost-limit'],
        tcpEstablished: flags['tcp-established'],
        skipInFlight: flags['skip-in-flight'],
        prevImagesDir: flags['prev-images-dir'],
        trackMem: flags['track-mem'],
        networkLock: flags['network-lock'],
        only: flags.only,
        skip: flags.skip,
        extUnixSk: flags['ext-unix-sk'],
        shellJob: flags['shell-job'],
        freezeTimeoutMs: freezeTimeoutMs(flags.timeout),
        pagesVia: flags['pages-via'],
        log,
        progress: this.progress,
      },
      registry,
    ), (report) => {
      this.progressLine.clear();
      const what = report.pids.length === 1 ? `pid ${report.pids[0]}` : `${plural(report.pids.length, 'process', 'processes')} (${report.pids.join(', ')})`;
      const fate = flags['leave-running'] ? 'left running' : 'killed';
      this.log(`Dumped ${what} into ${report.imagesDir} in ${report.seconds.toFixed(2)} s (${fate}); amber's peak RSS ${(core.peakRssKb() / 1024).toFixed(0)} MB`);
      const counters = counterLine(report.counters);
      if (counters) this.log(`  ${counters}`);
    });
  }
}

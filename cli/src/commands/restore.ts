import { fstatSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { pagesFillFlag } from '../pages-flags';
import { EngineCommand, listFlag, pluginFlag } from '../base';
import { CliError } from '../errors';
import { plural } from '../format';
import { networkLockFlag } from '../network-lock-flag';

export default class Restore extends EngineCommand {
  static override summary = 'Restore a process tree from an image directory';
  static override description =
    'Recreates the dumped tree with its original pids and lets it run. Without -d, waits for the ' +
    'restored root to exit and exits with its status.';
  static override examples = [
    '<%= config.bin %> restore -D /tmp/ckpt -d',
    '<%= config.bin %> restore -D /tmp/ckpt --pidfile /run/app.pid',
    { description: 'Bring back a shell job (dumped with -j) as the foreground job of this terminal', command: '<%= config.bin %> restore -j -D /tmp/vim' },
  ];

  static override flags = {
    'images-dir': Flags.string({ char: 'D', description: 'directory holding the images', required: true, helpValue: 'DIR' }),
    'restore-detached': Flags.boolean({ char: 'd', description: 'return once the tree runs instead of waiting for it to exit' }),
    pidfile: Flags.string({ description: 'write the pid of the restored root into this file', helpValue: 'FILE' }),
    skip: listFlag('do not restore these resource plugins (allows restoring a partial image; the process comes back without what they hold)'),
    'tcp-established': Flags.boolean({ description: 'restore established TCP connections (needed when the images hold one)' }),
    'tcp-close': Flags.boolean({ description: 'restore the images\' TCP connections as closed sockets instead' }),
    'inherit-fd': Flags.string({
      description:
        "use amber's open fd N for the dumped file KEY, e.g. fd[3]:pipe:[12345] for a pipe whose other end was outside the tree, " +
        'fd[0]:tty[RDEV:DEV] for a terminal (st_rdev and st_dev of the dumped one, in hex) (repeatable)',
      multiple: true,
      helpValue: 'fd[N]:KEY',
    }),
    'shell-job': Flags.boolean({
      char: 'j',
      description: "restore a tree dumped with -j into amber's own session: its terminal is amber's, and it runs as the foreground job until it exits",
    }),
    'ext-unix-sk': Flags.boolean({ description: 'reconnect unix sockets dumped with --ext-unix-sk to their peers outside the tree' }),
    'network-lock': networkLockFlag,
    'pages-fill': pagesFillFlag,
    plugin: pluginFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Restore);
    const core = await this.loadCore();
    const log = this.makeLogger(core, flags.verbose, flags['log-file']);
    const registry = this.discoverPlugins(core, flags.plugin);
    const detached = flags['restore-detached'];
    // Said as soon as the tree runs: without -d, amber then waits (maybe for days) for it to exit.
    const onRunning = (running: { rootPid: number; pids: number[]; seconds: number }) => {
      this.progressLine.clear();
      const what = running.pids.length === 1 ? `pid ${running.rootPid}` : `${plural(running.pids.length, 'process', 'processes')} (root pid ${running.rootPid})`;
      this.log(
        `Restored ${what} from ${flags['images-dir']} in ${running.seconds.toFixed(2)} s; amber's peak RSS ${(core.peakRssKb() / 1024).toFixed(0)} MB` +
          (detached ? '' : '; waiting for it to exit'),
      );
    };
    const report = await core.restore(
      { imagesDir: flags['images-dir'], inheritFds: (flags['inherit-fd'] ?? []).map((arg) => parseInheritFd(arg, core.parseTtyInheritKey)), detached, pidfile: flags.pidfile, skip: flags.skip, tcpEstablished: flags['tcp-established'], tcpClose: flags['tcp-close'], extUnixSk: flags['ext-unix-sk'], shellJob: flags['shell-job'], networkLock: flags['network-lock'], pagesFill: flags['pages-fill'], log, progress: this.progress, onRunning },
      registry,
    );
    if (detached) return;
    // Like CRIU, pass the restored root's exit status on to whoever started us.
    log.info(`restored root ${report.rootPid} exited${report.exitCode !== undefined ? ` with status ${report.exitCode}` : ''}`);
    if (report.exitCode !== undefined) process.exitCode = report.exitCode;
  }
}

/** CRIU's --inherit-fd syntax: fd[N]:KEY, N an fd amber was started with. */
function parseInheritFd(arg: string, ttyKey: (key: string) => object | undefined): { fd: number; key: string } {
  const m = /^fd\[(\d+)\]:(.+)$/.exec(arg);
  if (!m) throw new CliError(`--inherit-fd ${arg}: expected fd[N]:KEY, e.g. fd[3]:pipe:[12345]`);
  if (m[2].startsWith('tty') && !ttyKey(m[2])) {
    throw new CliError(`--inherit-fd ${arg}: a terminal's key is tty[RDEV:DEV], its st_rdev and st_dev in hex, e.g. fd[0]:tty[8803:19]`);
  }
  const fd = Number(m[1]);
  try {
    fstatSync(fd);
  } catch {
    throw new CliError(`--inherit-fd ${arg}: amber has no open fd ${fd}`);
  }
  return { fd, key: m[2] };
}

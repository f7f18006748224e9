import * as fs from 'node:fs';
import * as path from 'node:path';
import { CriuConfigError, withConfigFiles, type CriuConfigSources, type SourcedWord } from './criu-config';

/**
 * CRIU's command line, as the tools that drive CRIU pass it (zdtm, lxc-checkpoint, criu-ns,
 * scripts), turned into amber's. Every option CRIU has is one of: mapped to amber's flag of the
 * same meaning, accepted because amber already behaves that way, or refused by name.
 */
export type CriuCall =
  | { kind: 'version' }
  | {
      kind: 'run';
      argv: string[];
      statusFd?: number;
      /**
       * A mount option CRIU only uses for a tree in a mount namespace of its own (or an image of
       * one): amber-criu checks the tree or the image has none before it runs.
       */
      mountOption?: { word: string; tree?: number; imagesDir?: string };
    }
  | { kind: 'feature'; name: string; rows: string[] }
  | { kind: 'refuse'; message: string };

type Command = 'dump' | 'pre-dump' | 'restore' | 'check';
const COMMANDS: readonly string[] = ['dump', 'pre-dump', 'restore', 'check'];

interface Option {
  /** long name without "--"; short letter if it has one */
  long: string;
  short?: string;
  /** takes a value (as the next word, or after = / glued to the short letter); 'optional': only after = */
  value: boolean | 'optional';
  /** may be given more than once (else the last one wins, as a command line wins over a config file) */
  multi?: boolean;
  /** amber's words for it, or 'accept' (amber already does this), or a refusal reason */
  to: ((value: string, cmd: Command) => string[] | string) | 'accept';
}

const same = (flag: string) => (v: string) => (v === '' ? [flag] : [flag, v]);
const only = (cmds: Command[], flag: string) => (v: string, cmd: Command) =>
  cmds.includes(cmd) ? same(flag)(v) : `is not an option of ${cmd}`;

/*
 * Mount options: CRIU only uses them to dump or rebuild a mount namespace of the tree's own.
 * With the tree in amber's mount namespace (and an image without mounts) CRIU does nothing with
 * them either, so they are accepted then; amber-criu checks that before it runs.
 */
const MOUNT_OPTIONS = ['ext-mount-map', 'enable-external-masters', 'enable-external-sharing', 'enable-fs'];

const OPTIONS: Option[] = [
  { long: 'tree', short: 't', value: true, to: only(['dump', 'pre-dump'], '-t') },
  { long: 'images-dir', short: 'D', value: true, to: (v, cmd) => (cmd === 'check' ? [] : ['-D', v]) },
  { long: 'leave-running', short: 'R', value: false, to: only(['dump'], '--leave-running') },
  { long: 'restore-detached', short: 'd', value: false, to: only(['restore'], '-d') },
  { long: 'tcp-established', value: false, to: only(['dump', 'restore'], '--tcp-established') },
  { long: 'tcp-close', value: false, to: only(['restore'], '--tcp-close') },
  { long: 'skip-in-flight', value: false, to: only(['dump'], '--skip-in-flight') },
  { long: 'ext-unix-sk', value: false, to: only(['dump', 'restore'], '--ext-unix-sk') },
  { long: 'prev-images-dir', value: true, to: only(['dump', 'pre-dump'], '--prev-images-dir') },
  { long: 'track-mem', value: false, to: only(['dump', 'pre-dump'], '--track-mem') },
  { long: 'inherit-fd', value: true, multi: true, to: only(['restore'], '--inherit-fd') },
  { long: 'shell-job', short: 'j', value: false, to: only(['dump', 'restore'], '-j') },
  { long: 'pidfile', value: true, to: (v, cmd) => (cmd === 'restore' ? ['--pidfile', v] : []) },
  // CRIU's default is 10 s (added below when not given); amber's own dump has no limit unless told
  { long: 'timeout', value: true, to: (v, cmd) => (cmd === 'dump' || cmd === 'pre-dump' ? (/^\d+$/.test(v) ? ['--timeout', v] : `${v} is not a number of seconds`) : []) },
  // amber always dumps file locks, saves open unlinked files, and reads no configuration file
  { long: 'file-locks', short: 'l', value: false, to: 'accept' },
  { long: 'link-remap', value: false, to: 'accept' },
  { long: 'ghost-limit', value: true, to: only(['dump'], '--ghost-limit') },
  { long: 'no-default-config', value: false, to: 'accept' },
  // both modes read the same pages; amber picks its own way of moving them
  { long: 'pre-dump-mode', value: true, to: (v) => (v === 'read' || v === 'splice' ? [] : `${v} is not read or splice`) },
  // amber restores into the root it runs in: --root naming that same root changes nothing
  { long: 'root', value: true, to: (v, cmd) => (cmd === 'restore' ? sameRoot(v) : []) },
  // CRIU's ignore: cgroups are neither dumped nor restored, the tree lands in the restorer's own cgroup, as with amber
  {
    long: 'manage-cgroups', value: 'optional',
    to: (v) => (v === 'ignore' ? [] : `amber does not dump or restore cgroup membership (only --manage-cgroups=ignore, its behaviour)`),
  },
  { long: 'ext-mount-map', short: 'M', value: true, multi: true, to: 'accept' },
  { long: 'enable-external-masters', value: false, to: 'accept' },
  { long: 'enable-external-sharing', value: false, to: 'accept' },
  { long: 'enable-fs', value: true, multi: true, to: 'accept' },
  // handled around the run: the log file and where a relative one goes, verbosity, status fd
  { long: 'log-file', short: 'o', value: true, to: 'accept' },
  { long: 'work-dir', short: 'W', value: true, to: 'accept' },
  { long: 'verbosity', value: true, to: 'accept' },
  { long: 'status-fd', value: true, to: 'accept' },
  { long: 'config', value: true, to: 'accept' },
  { long: 'feature', value: true, to: (_v, cmd) => (cmd === 'check' ? [] : 'is an option of check only') },
  // amber check always looks at everything it knows
  { long: 'all', value: false, to: (_v, cmd) => (cmd === 'check' ? [] : 'is an option of check only') },
];

function sameRoot(dir: string): string[] | string {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch (e) {
    return `cannot resolve ${dir} (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  return real === fs.realpathSync('/') ? [] : `amber restores into its own root only (${dir} is not /)`;
}

const REFUSED: Record<string, string> = {
  'cgroup-root': 'amber does not dump or restore cgroup membership',
  'freeze-cgroup': 'amber freezes with ptrace only',
  external: 'amber has no external resources yet',
  'restore-sibling': 'amber restores the root as its own child, or under init with -d, never as a sibling of amber-criu',
  'lazy-pages': 'amber has no lazy pages yet',
  'page-server': 'amber has no page server yet',
};
/**
 * `check --feature NAME`: the rows of `amber check` that say amber can use it (any one present
 * will do), or why amber cannot whatever the kernel has.
 */
export const CRIU_FEATURES: Record<string, string[] | string> = {
  mem_dirty_track: ['PAGEMAP_SCAN (Linux 6.7)', 'soft-dirty bits'],
  kcmp_epoll: ['kcmp'],
  timerfd: ['Linux >= 5.10 on x86-64'],
  userns: 'amber does not dump user namespaces',
  lazy_pages: 'amber has no lazy pages',
};

export interface CriuArgvOptions {
  /** the configuration files CRIU would read (criu-main gives CRIU's paths; none by default) */
  config?: CriuConfigSources;
}

export function translateCriuArgv(argv: string[], options: CriuArgvOptions = {}): CriuCall {
  if (argv.includes('--version') || argv.includes('-V')) return { kind: 'version' };
  let words: SourcedWord[];
  try {
    words = withConfigFiles(argv, options.config ?? {});
  } catch (e) {
    if (e instanceof CriuConfigError) return { kind: 'refuse', message: `amber-criu: ${e.message}` };
    throw e;
  }
  let cmd: Command | undefined;
  let seen: { opt: Option; value: string; word: string }[] = [];
  let verbosity = 2;
  for (let i = 0; i < words.length; i++) {
    const { word, file } = words[i];
    const refuse = (message: string): CriuCall => ({ kind: 'refuse', message: `amber-criu: ${message}${file ? ` (in ${file})` : ''}` });
    if (!word.startsWith('-') || word === '-') {
      if (cmd !== undefined) return refuse(`unexpected argument ${word}`);
      if (!COMMANDS.includes(word)) return refuse(`command ${word} is not supported (amber-criu runs ${COMMANDS.join(', ')})`);
      cmd = word as Command;
      continue;
    }
    // -v, -vvvv, -v4: CRIU's verbosity, counted or given; anything else glued to -v is read as a
    // number as CRIU does (zdtm's "-verbosity=0" is level 0)
    const v = /^-v(.*)$/.exec(word);
    if (v) {
      verbosity = /^v*$/.test(v[1]) ? 3 + v[1].length : Number.parseInt(v[1], 10) || 0;
      continue;
    }
    let name: string;
    let value: string | undefined;
    let opt: Option | undefined;
    if (word.startsWith('--')) {
      [name, value] = word.slice(2).includes('=') ? [word.slice(2, word.indexOf('=')), word.slice(word.indexOf('=') + 1)] : [word.slice(2), undefined];
      opt = OPTIONS.find((o) => o.long === name);
      // CRIU's --no-X for a yes/no option: undoes an X given earlier (a config file's, say)
      const negated = !opt && name.startsWith('no-') ? OPTIONS.find((o) => o.long === name.slice(3) && o.value === false) : undefined;
      if (negated && value === undefined) {
        seen = seen.filter((s) => s.opt !== negated);
        continue;
      }
      if (!opt && REFUSED[name]) return refuse(`--${name}: ${REFUSED[name]}`);
    } else {
      name = word[1];
      opt = OPTIONS.find((o) => o.short === name);
      if (word.length > 2) value = word.slice(2);
    }
    if (!opt) return refuse(`${word}: unknown or unsupported CRIU option`);
    if (opt.value === true && value === undefined) {
      if (i + 1 >= words.length) return refuse(`${word} needs a value`);
      value = words[++i].word;
    } else if (opt.value === false && value !== undefined) {
      return refuse(`${word} takes no value`);
    }
    if (opt.long === 'verbosity') verbosity = Number(value);
    // the last one wins: a later file, then the command line, over an earlier file
    if (!opt.multi) seen = seen.filter((s) => s.opt !== opt);
    seen.push({ opt, value: value ?? '', word: file ? `${word} (in ${file})` : word });
  }
  if (!cmd) return { kind: 'refuse', message: `amber-criu: no command (one of ${COMMANDS.join(', ')})` };

  const feature = seen.find((s) => s.opt.long === 'feature')?.value;
  if (feature !== undefined) {
    const rows = CRIU_FEATURES[feature];
    if (rows === undefined) return { kind: 'refuse', message: `amber-criu: check --feature ${feature}: amber knows ${Object.keys(CRIU_FEATURES).join(', ')}` };
    if (typeof rows === 'string') return { kind: 'refuse', message: `amber-criu: check --feature ${feature}: ${rows}` };
    return { kind: 'feature', name: feature, rows };
  }
  const out: string[] = [cmd];
  for (const { opt, value, word } of seen) {
    if (opt.to === 'accept') continue;
    const r = opt.to(value, cmd);
    if (typeof r === 'string') return { kind: 'refuse', message: `amber-criu: ${word}: ${r}` };
    out.push(...r);
  }
  const valueOf = (long: string) => seen.find((s) => s.opt.long === long)?.value;
  if ((cmd === 'dump' || cmd === 'pre-dump') && valueOf('timeout') === undefined) out.push('--timeout', String(CRIU_DEFAULT_TIMEOUT_S));
  // CRIU writes a relative log file into the work directory, which is the images directory
  // unless -W says otherwise
  const log = valueOf('log-file');
  if (log !== undefined && log !== '-' && cmd !== 'check') {
    const base = valueOf('work-dir') ?? valueOf('images-dir') ?? '.';
    out.push('-o', path.isAbsolute(log) ? log : path.join(base, log));
  }
  if (verbosity >= 4 && cmd !== 'check') out.push('-v');
  const statusFd = valueOf('status-fd');
  if (statusFd !== undefined && !/^\d+$/.test(statusFd)) return { kind: 'refuse', message: `amber-criu: --status-fd ${statusFd}: not an fd number` };
  const mount = seen.find((s) => MOUNT_OPTIONS.includes(s.opt.long));
  const tree = valueOf('tree');
  const mountOption =
    mount && cmd !== 'check' ? { word: mount.word, tree: tree === undefined ? undefined : Number(tree), imagesDir: cmd === 'restore' ? valueOf('images-dir') : undefined } : undefined;
  return { kind: 'run', argv: out, statusFd: statusFd === undefined ? undefined : Number(statusFd), ...(mountOption ? { mountOption } : {}) };
}

/** CRIU's own default for --timeout (criu/include/cr_options.h). */
const CRIU_DEFAULT_TIMEOUT_S = 10;

import * as path from 'node:path';

/**
 * CRIU's command line, as the tools that drive CRIU pass it (zdtm, lxc-checkpoint, criu-ns,
 * scripts), turned into amber's. Every option CRIU has is one of: mapped to amber's flag of the
 * same meaning, accepted because amber already behaves that way, or refused by name.
 */
export type CriuCall =
  | { kind: 'version' }
  | { kind: 'run'; argv: string[]; statusFd?: number }
  | { kind: 'feature'; name: string; rows: string[] }
  | { kind: 'refuse'; message: string };

type Command = 'dump' | 'pre-dump' | 'restore' | 'check';
const COMMANDS: readonly string[] = ['dump', 'pre-dump', 'restore', 'check'];

interface Option {
  /** long name without "--"; short letter if it has one */
  long: string;
  short?: string;
  /** takes a value (as the next word, or after = / glued to the short letter) */
  value: boolean;
  /** amber's words for it, or 'accept' (amber already does this), or a refusal reason */
  to: ((value: string, cmd: Command) => string[] | string) | 'accept';
}

const same = (flag: string) => (v: string) => (v === '' ? [flag] : [flag, v]);
const only = (cmds: Command[], flag: string) => (v: string, cmd: Command) =>
  cmds.includes(cmd) ? same(flag)(v) : `is not an option of ${cmd}`;

const OPTIONS: Option[] = [
  { long: 'tree', short: 't', value: true, to: only(['dump', 'pre-dump'], '-t') },
  { long: 'images-dir', short: 'D', value: true, to: (v, cmd) => (cmd === 'check' ? [] : ['-D', v]) },
  { long: 'leave-running', short: 'R', value: false, to: only(['dump'], '--leave-running') },
  { long: 'restore-detached', short: 'd', value: false, to: only(['restore'], '-d') },
  { long: 'tcp-established', value: false, to: only(['dump', 'restore'], '--tcp-established') },
  { long: 'tcp-close', value: false, to: only(['restore'], '--tcp-close') },
  { long: 'ext-unix-sk', value: false, to: only(['dump', 'restore'], '--ext-unix-sk') },
  { long: 'prev-images-dir', value: true, to: only(['dump', 'pre-dump'], '--prev-images-dir') },
  { long: 'track-mem', value: false, to: only(['dump', 'pre-dump'], '--track-mem') },
  { long: 'inherit-fd', value: true, to: only(['restore'], '--inherit-fd') },
  { long: 'shell-job', short: 'j', value: false, to: only(['dump', 'restore'], '-j') },
  { long: 'pidfile', value: true, to: (v, cmd) => (cmd === 'restore' ? ['--pidfile', v] : []) },
  // amber always dumps file locks, saves open unlinked files, and reads no configuration file
  { long: 'file-locks', short: 'l', value: false, to: 'accept' },
  { long: 'link-remap', value: false, to: 'accept' },
  { long: 'ghost-limit', value: true, to: only(['dump'], '--ghost-limit') },
  { long: 'no-default-config', value: false, to: 'accept' },
  // both modes read the same pages; amber picks its own way of moving them
  { long: 'pre-dump-mode', value: true, to: (v) => (v === 'read' || v === 'splice' ? [] : `${v} is not read or splice`) },
  // handled around the run: the log file and where a relative one goes, verbosity, status fd
  { long: 'log-file', short: 'o', value: true, to: 'accept' },
  { long: 'work-dir', short: 'W', value: true, to: 'accept' },
  { long: 'verbosity', value: true, to: 'accept' },
  { long: 'status-fd', value: true, to: 'accept' },
  { long: 'feature', value: true, to: (_v, cmd) => (cmd === 'check' ? [] : 'is an option of check only') },
  { long: 'all', value: false, to: (_v, cmd) => (cmd === 'check' ? [] : 'is an option of check only') },
];

const REFUSED: Record<string, string> = {
  'manage-cgroups': 'amber does not dump or restore cgroups',
  'ext-mount-map': 'amber does not dump mount namespaces',
  'enable-external-masters': 'amber does not dump mount namespaces',
  'enable-fs': 'amber does not dump mount namespaces',
  root: 'amber restores into the current root only',
  external: 'amber has no external resources yet',
  'restore-sibling': 'amber restores the tree as a child of itself only',
  timeout: 'amber does not time out a freeze',
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

export function translateCriuArgv(argv: string[]): CriuCall {
  if (argv.includes('--version') || argv.includes('-V')) return { kind: 'version' };
  let cmd: Command | undefined;
  const seen: { opt: Option; value: string; word: string }[] = [];
  let verbosity = 2;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (!word.startsWith('-') || word === '-') {
      if (cmd !== undefined) return { kind: 'refuse', message: `amber-criu: unexpected argument ${word}` };
      if (!COMMANDS.includes(word)) return { kind: 'refuse', message: `amber-criu: command ${word} is not supported (amber-criu runs ${COMMANDS.join(', ')})` };
      cmd = word as Command;
      continue;
    }
    // -v, -vvvv, -v4: CRIU's verbosity, counted or given
    const v = /^-(v+)(\d*)$/.exec(word);
    if (v) {
      verbosity = v[2] ? Number(v[2]) : 2 + v[1].length;
      continue;
    }
    let name: string;
    let value: string | undefined;
    let opt: Option | undefined;
    if (word.startsWith('--')) {
      [name, value] = word.slice(2).includes('=') ? [word.slice(2, word.indexOf('=')), word.slice(word.indexOf('=') + 1)] : [word.slice(2), undefined];
      opt = OPTIONS.find((o) => o.long === name);
      if (!opt && REFUSED[name]) return { kind: 'refuse', message: `amber-criu: --${name}: ${REFUSED[name]}` };
    } else {
      name = word[1];
      opt = OPTIONS.find((o) => o.short === name);
      if (word.length > 2) value = word.slice(2);
    }
    if (!opt) return { kind: 'refuse', message: `amber-criu: ${word}: unknown or unsupported CRIU option` };
    if (opt.value && value === undefined) {
      if (i + 1 >= argv.length) return { kind: 'refuse', message: `amber-criu: ${word} needs a value` };
      value = argv[++i];
    } else if (!opt.value && value !== undefined) {
      return { kind: 'refuse', message: `amber-criu: ${word} takes no value` };
    }
    if (opt.long === 'verbosity') verbosity = Number(value);
    seen.push({ opt, value: value ?? '', word });
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
  return { kind: 'run', argv: out, statusFd: statusFd === undefined ? undefined : Number(statusFd) };
}

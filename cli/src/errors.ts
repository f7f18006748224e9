/** A user-facing error raised by the CLI itself (bad path, missing features); printed as one line. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** Thrown to end a command with a given exit code and nothing more to say (already reported). */
export class QuietExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'QuietExit';
  }
}

// Matched by name so that classifying an error never has to load @amber/core, and a second copy
// of core (a third-party plugin's own dependency) still counts.
function inheritsFrom(err: object, name: string): boolean {
  for (let proto = Object.getPrototypeOf(err); proto; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: string } }).constructor?.name === name) return true;
  }
  return false;
}

/** oclif's own parse and usage errors carry this marker; their first line is the message. */
function isOclifError(err: object): boolean {
  return 'oclif' in err && inheritsFrom(err, 'CLIError');
}

function isOclifExit(err: object): err is { oclif: { exit: number } } {
  const o = (err as { oclif?: { exit?: unknown } }).oclif;
  return inheritsFrom(err, 'ExitError') && typeof o?.exit === 'number';
}

export interface Report {
  /** Lines for stderr, without trailing newlines. */
  lines: string[];
  exitCode: number;
}

// oclif colours and wraps some of its messages.
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string): string => s.replace(/\u001b\[[0-9;]*m/g, '');

/**
 * oclif's parse errors span several lines ("The following errors occurred:", one line per
 * problem, "See more help with --help"); folds them into one sentence.
 */
export function oclifMessage(message: string, command?: string): string {
  const lines = stripAnsi(message)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^The following errors? occurred:$/.test(l) && !/^See more help with --help$/.test(l));
  const parts: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const parsing = /^Parsing (--\S+)$/.exec(line);
    const missingArgs = /^Missing \d+ required args?:$/.test(line);
    if (parsing && i + 1 < lines.length) parts.push(`${parsing[1]}: ${lines[++i]}`);
    else if (missingArgs) {
      while (i + 1 < lines.length) parts.push(`missing required argument ${lines[++i].split(/\s+/)[0].toUpperCase()}`);
    } else parts.push(line.replace(/^Missing required flag (\S+)$/, 'missing required flag --$1'));
  }
  const text = parts.map((p) => p.charAt(0).toLowerCase() + p.slice(1)).join('; ') || 'invalid command line';
  return command && /missing required|^--|nonexistent flag|unexpected argument/i.test(text) ? `${text} (see amber ${command} --help)` : text;
}

const loggedErrors = new WeakSet<object>();

/** The error, with its stack, went into the -o log file: stderr then gets its one line only. */
export function markLogged(err: object): void {
  loggedErrors.add(err);
}

/** How a failed run is reported: one `amber: ...` line, and the stack only when verbose (and not logged to a file). */
export function reportError(err: unknown, verbose: boolean, command?: string): Report {
  if (err instanceof QuietExit) return { lines: [], exitCode: err.code };
  if (typeof err === 'object' && err !== null && isOclifExit(err)) return { lines: [], exitCode: err.oclif.exit };
  const e = err instanceof Error ? err : new Error(String(err));
  const oclif = isOclifError(e);
  const text = oclif ? oclifMessage(e.message, command) : stripAnsi(e.message).split('\n').find((l) => l.trim() !== '')?.trim() ?? e.name;
  const expected = oclif || e instanceof CliError || inheritsFrom(e, 'AmberError');
  const logged = loggedErrors.has(e);
  const internal = logged ? ' (internal error; its stack is in the log file)' : ' (internal error; rerun with -v for details)';
  const lines = [`amber: ${text}${expected ? '' : internal}`];
  if (verbose && e.stack && !logged) lines.push(e.stack);
  return { lines, exitCode: 1 };
}

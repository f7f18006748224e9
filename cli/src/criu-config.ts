import * as fs from 'node:fs';

/**
 * CRIU's configuration files, read as CRIU reads them (criu(8), CONFIGURATION FILES): in order
 * the global file, the user's file, $CRIU_CONFIG_FILE, `--config FILE`, then the command line,
 * each later one winning. `--config` and `--no-default-config` skip the first two. A line is an
 * option without its dashes, then its value if it has one (in double quotes if it holds spaces,
 * `\"` for a quote inside); `#` starts a comment.
 */
export interface CriuConfigSources {
  /** CRIU's /etc/criu/default.conf */
  global?: string;
  /** CRIU's $HOME/.criu/default.conf */
  user?: string;
  /** $CRIU_CONFIG_FILE */
  env?: string;
}

/** One word of the merged command line, and the file it came from (undefined: the command line). */
export interface SourcedWord {
  word: string;
  file?: string;
}

export class CriuConfigError extends Error {}

/** The words of all configuration files that apply, in CRIU's order, then argv's own. */
export function withConfigFiles(argv: string[], sources: CriuConfigSources): SourcedWord[] {
  let explicit: string | undefined;
  let noDefault = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--no-default-config') noDefault = true;
    else if (argv[i] === '--config') {
      if (i + 1 >= argv.length) throw new CriuConfigError('--config needs a file');
      explicit = argv[i + 1];
      noDefault = true;
    } else if (argv[i].startsWith('--config=')) {
      explicit = argv[i].slice('--config='.length);
      noDefault = true;
    }
  }
  const files: { file: string; mustExist: boolean; what: string }[] = [];
  if (!noDefault && sources.global) files.push({ file: sources.global, mustExist: false, what: sources.global });
  if (!noDefault && sources.user) files.push({ file: sources.user, mustExist: false, what: sources.user });
  // CRIU skips a file it cannot open, named or not; a file the user named and that is missing is
  // a mistake worth one line here
  if (sources.env) files.push({ file: sources.env, mustExist: true, what: `CRIU_CONFIG_FILE ${sources.env}` });
  if (explicit !== undefined) files.push({ file: explicit, mustExist: true, what: `--config ${explicit}` });
  const out: SourcedWord[] = [];
  for (const { file, mustExist, what } of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!mustExist && code === 'ENOENT') continue;
      throw new CriuConfigError(`${what}: cannot read it (${code ?? String(e)})`);
    }
    out.push(...parseConfigText(text, file).map((word) => ({ word, file })));
  }
  // --config and its value were taken care of above
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--config') i++;
    else if (!argv[i].startsWith('--config=')) out.push({ word: argv[i] });
  }
  return out;
}

/** A configuration file's text as command-line words: `name value` becomes `--name`, `value`. */
export function parseConfigText(text: string, file: string): string[] {
  const words: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line)!;
    const name = m[1].split('#')[0];
    if (name.startsWith('-')) throw new CriuConfigError(`${where}: ${name}: options are written without dashes`);
    words.push(`--${name}`);
    if (name !== m[1]) return; // a comment right after the name
    let rest = (m[2] ?? '').trim();
    if (rest === '' || rest.startsWith('#')) return;
    let value: string;
    if (rest.startsWith('"')) {
      const end = closingQuote(rest);
      if (end < 0) throw new CriuConfigError(`${where}: no closing quote`);
      value = rest.slice(1, end).replace(/\\"/g, '"');
      rest = rest.slice(end + 1).trim();
    } else {
      const sp = rest.search(/\s/);
      const token = sp < 0 ? rest : rest.slice(0, sp);
      const hash = token.indexOf('#');
      value = hash < 0 ? token : token.slice(0, hash);
      rest = hash >= 0 || sp < 0 ? '' : rest.slice(sp).trim();
    }
    if (rest !== '' && !rest.startsWith('#')) throw new CriuConfigError(`${where}: more than one value for ${name} (quote a value holding spaces)`);
    words.push(value);
  });
  return words;
}

function closingQuote(s: string): number {
  for (let i = 1; i < s.length; i++) if (s[i] === '"' && s[i - 1] !== '\\') return i;
  return -1;
}

import { Flags } from '@oclif/core';
import { CliError } from './errors';

/** CRIU's --timeout, in seconds (a fraction too): how long freezing the tree may take. */
export const freezeTimeoutFlag = Flags.string({
  description:
    'fail the dump, leaving the tree running, if freezing every task of it takes longer than this many seconds ' +
    '(as CRIU\'s --timeout; a vfork parent, say, does not stop until its child execs or exits); default: no limit',
  helpValue: 'SECONDS',
});

/** The flag's value in ms for the engine (undefined: no limit). */
export function freezeTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const s = Number(value);
  if (value.trim() === '' || !Number.isFinite(s) || s < 0) throw new CliError(`--timeout ${value}: not a number of seconds`);
  return s * 1000;
}

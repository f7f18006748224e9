// The command table oclif reads (package.json: oclif.commands, strategy "explicit"): one import
// per command, instead of a scan of this directory on every start.
import Check from './check';
import Compare from './compare';
import Dump from './dump';
import PreDump from './pre-dump';
import Restore from './restore';
import Show from './show';

export const COMMANDS = { check: Check, compare: Compare, dump: Dump, 'pre-dump': PreDump, restore: Restore, show: Show };

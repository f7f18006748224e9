import { Flags } from '@oclif/core';

// The values of core's PAGES_DUMP_PATHS and PAGES_FILL_PATHS (not imported: --help loads no core).

export const pagesViaFlag = Flags.option({
  description:
    'how the pages reach the pages file: the task vmsplice()s them into a pipe and splice()s that into the file (splice), ' +
    'the task copies them into a mapping of it (copy), the task writev()s them (writev), ' +
    'or amber reads them through /proc/PID/mem (amber); default: writev on tmpfs, splice elsewhere (writev where the task cannot make a pipe)',
  options: ['splice', 'copy', 'writev', 'amber'] as const,
  helpValue: 'PATH',
})();

export const pagesFillFlag = Flags.option({
  description: 'how restored memory is filled: by amber with UFFDIO_COPY (uffd, the default where the kernel allows it) or by the task with preadv (preadv)',
  options: ['uffd', 'preadv'] as const,
  helpValue: 'PATH',
})();

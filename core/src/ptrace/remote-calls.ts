import { F, FIONREAD, PAGEMAP_SCAN, PR, UFFD } from '../kernel/constants';
import { SYSCALLS, type ArgsOf, type SyscallArg, type SyscallName } from '../kernel/syscall-table';

/** Runs a call of the table in a task (RemoteSyscall.invoke). */
export interface TableCallRunner {
  invoke(name: SyscallName, args: readonly SyscallArg[], raw: boolean, detail?: string): number;
}

/** One typed method per syscall of the table, its parameters in order. */
export type SyscallMethods = { readonly [N in SyscallName]: (...args: ArgsOf<N>) => number };

// The methods come from the table at run time (the static block); the interface gives them types.
export interface Syscalls extends SyscallMethods {}

/**
 * The table's syscalls, injected into one task: `remote.sys.dup3(oldfd, newfd, flags)`. A thrown
 * KernelError names the call (with its command, for the multiplexers: `fcntl(F_SETFL)`), the pid,
 * the errno and what `with(...)` said the call is about.
 */
export class Syscalls {
  constructor(
    private readonly runner: TableCallRunner,
    private readonly raw: boolean,
    private readonly detail?: string,
  ) {}

  /** The same calls, saying in their errors what they are about: `remote.sys.with(`fd ${fd}`).close(fd)`. */
  with(detail: string | undefined): Syscalls {
    return new Syscalls(this.runner, this.raw, detail);
  }

  static {
    for (const name of Object.keys(SYSCALLS) as SyscallName[]) {
      Object.defineProperty(Syscalls.prototype, name, {
        value(this: Syscalls, ...args: SyscallArg[]): number {
          return this.runner.invoke(name, args, this.raw, this.detail);
        },
      });
    }
  }
}

/** Names of the commands of the multiplexing calls, for their errors. */
const COMMANDS: { readonly [N in SyscallName]?: { at: number; names: ReadonlyMap<number, string> } } = {
  fcntl: { at: 1, names: named('F_', F) },
  prctl: { at: 0, names: named('PR_', PR) },
  seccomp: { at: 0, names: new Map([[0, 'SECCOMP_SET_MODE_STRICT'], [1, 'SECCOMP_SET_MODE_FILTER']]) },
  epoll_ctl: { at: 1, names: new Map([[1, 'EPOLL_CTL_ADD'], [2, 'EPOLL_CTL_DEL'], [3, 'EPOLL_CTL_MOD']]) },
  ioctl: {
    at: 1,
    names: new Map([
      [FIONREAD, 'FIONREAD'], [PAGEMAP_SCAN, 'PAGEMAP_SCAN'], [UFFD.IOC_API, 'UFFDIO_API'], [UFFD.IOC_REGISTER, 'UFFDIO_REGISTER'],
      [UFFD.IOC_UNREGISTER, 'UFFDIO_UNREGISTER'], [UFFD.IOC_COPY, 'UFFDIO_COPY'], [UFFD.IOC_WRITEPROTECT, 'UFFDIO_WRITEPROTECT'],
    ]),
  },
};

function named(prefix: string, values: Readonly<Record<string, number>>): Map<number, string> {
  const names = new Map<number, string>();
  for (const [key, value] of Object.entries(values)) if (!names.has(value)) names.set(value, prefix + key);
  return names;
}

/** The call's name as its errors show it: `fcntl(F_DUPFD_CLOEXEC)`, `close`. */
export function callName(name: SyscallName, args: readonly SyscallArg[]): string {
  const command = COMMANDS[name];
  if (!command) return name;
  const value = args[command.at];
  const known = typeof value === 'number' ? command.names.get(value) : undefined;
  return `${name}(${known ?? String(value)})`;
}

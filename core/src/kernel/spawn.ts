import { O } from './constants';
import { KernelError } from './errors';
import { libcLibrary } from './libc';

type Fn<A extends unknown[]> = (...args: A) => number;

/**
 * posix_spawn(3) from libc. glibc runs it as clone(CLONE_VM|CLONE_VFORK) + execve, safe from a
 * process with threads (node's), and returns only once the exec has happened or failed. A child
 * made this way is unknown to libuv, which waits only for the pids it spawned itself: its stops
 * under ptrace reach amber's waitpid (a child_process child's would be reaped by libuv).
 */
const spawnCalls = (() => {
  let bound: {
    spawn: Fn<[number[], string, Buffer, Buffer, (string | null)[], (string | null)[]]>;
    actionsInit: Fn<[Buffer]>;
    actionsDestroy: Fn<[Buffer]>;
    addOpen: Fn<[Buffer, number, string, number, number]>;
    addDup2: Fn<[Buffer, number, number]>;
    attrInit: Fn<[Buffer]>;
    attrDestroy: Fn<[Buffer]>;
    setFlags: Fn<[Buffer, number]>;
    setSigmask: Fn<[Buffer, Buffer]>;
    setSigdefault: Fn<[Buffer, Buffer]>;
  } | undefined;
  return () =>
    (bound ??= {
      spawn: libcLibrary.func('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)') as never,
      actionsInit: libcLibrary.func('int posix_spawn_file_actions_init(void *actions)') as never,
      actionsDestroy: libcLibrary.func('int posix_spawn_file_actions_destroy(void *actions)') as never,
      addOpen: libcLibrary.func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int oflag, uint32_t mode)') as never,
      addDup2: libcLibrary.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)') as never,
      attrInit: libcLibrary.func('int posix_spawnattr_init(void *attr)') as never,
      attrDestroy: libcLibrary.func('int posix_spawnattr_destroy(void *attr)') as never,
      setFlags: libcLibrary.func('int posix_spawnattr_setflags(void *attr, short flags)') as never,
      setSigmask: libcLibrary.func('int posix_spawnattr_setsigmask(void *attr, const void *mask)') as never,
      setSigdefault: libcLibrary.func('int posix_spawnattr_setsigdefault(void *attr, const void *mask)') as never,
    });
})();

// glibc's values (spawn.h)
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
/** glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336; room to spare. */
const OPAQUE_SIZE = 512;
/** sigset_t: 1024 bits. */
const SIGSET_SIZE = 128;

export interface SpawnOptions {
  /** This fd of amber's becomes the child's fd 3 (its other fds are close-on-exec in node). */
  fd3?: number;
  /** A session of its own (setsid), else amber's session and process group. */
  newSession: boolean;
}

/**
 * Starts `path` (with `argv`, its argv[0] first) as amber's child: stdin, stdout and stderr on
 * /dev/null, every signal at its default action and none blocked, an empty environment. Returns
 * its pid once it has exec'd.
 */
export function spawnProgram(path: string, argv: readonly string[], options: SpawnOptions): number {
  const c = spawnCalls();
  const actions = Buffer.alloc(OPAQUE_SIZE);
  const attr = Buffer.alloc(OPAQUE_SIZE);
  check(c.actionsInit(actions), 'posix_spawn_file_actions_init');
  try {
    check(c.attrInit(attr), 'posix_spawnattr_init');
    try {
      check(c.addOpen(actions, 0, '/dev/null', O.RDONLY, 0), 'posix_spawn_file_actions_addopen');
      check(c.addOpen(actions, 1, '/dev/null', O.WRONLY, 0), 'posix_spawn_file_actions_addopen');
      check(c.addDup2(actions, 1, 2), 'posix_spawn_file_actions_adddup2');
      // dup2 onto 3 clears close-on-exec there
      if (options.fd3 !== undefined) check(c.addDup2(actions, options.fd3, 3), 'posix_spawn_file_actions_adddup2');
      check(c.setSigmask(attr, Buffer.alloc(SIGSET_SIZE)), 'posix_spawnattr_setsigmask');
      check(c.setSigdefault(attr, Buffer.alloc(SIGSET_SIZE, 0xff)), 'posix_spawnattr_setsigdefault');
      check(c.setFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (options.newSession ? POSIX_SPAWN_SETSID : 0)), 'posix_spawnattr_setflags');
      const pid = [0];
      check(c.spawn(pid, path, actions, attr, [...argv, null], [null]), 'posix_spawn', path);
      return pid[0];
    } finally {
      c.attrDestroy(attr);
    }
  } finally {
    c.actionsDestroy(actions);
  }
}

/** posix_spawn and its helpers return the error number itself. */
function check(r: number, call: string, detail?: string): void {
  if (r !== 0) throw new KernelError(call, r, undefined, detail);
}

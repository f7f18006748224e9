import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  callName, errnoNumber, F, KernelError, PR, SYS, SYSCALLS, Syscalls, type SyscallArg, type SyscallName,
} from '@amber/core';

const HEADER = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';

function kernelNumbers(): Map<string, number> {
  const numbers = new Map<string, number>();
  for (const m of readFileSync(HEADER, 'utf8').matchAll(/^#define __NR_(\w+)\s+(\d+)$/gm)) numbers.set(m[1], Number(m[2]));
  return numbers;
}

test('syscall table: every number is the kernel header\'s, and SYS is the table', () => {
  const numbers = kernelNumbers();
  assert.ok(numbers.size > 300, `${HEADER}: only ${numbers.size} syscalls parsed`);
  const names = Object.keys(SYSCALLS) as SyscallName[];
  const wrong = names.filter((n) => numbers.get(n) !== SYSCALLS[n].nr).map((n) => `${n}: table ${SYSCALLS[n].nr}, kernel ${numbers.get(n)}`);
  assert.deepEqual(wrong, []);
  assert.deepEqual(Object.keys(SYS).sort(), [...names].sort());
  for (const n of names) assert.equal(SYS[n], SYSCALLS[n].nr, n);
  // what the plugins coming next need is there
  for (const n of ['socket', 'socketpair', 'bind', 'connect', 'listen', 'accept4', 'sendmsg', 'recvmsg', 'sendto', 'recvfrom',
    'getsockopt', 'setsockopt', 'getsockname', 'getpeername', 'shutdown', 'ioctl', 'shmget', 'shmat', 'shmctl', 'msgget',
    'msgsnd', 'msgctl', 'semget', 'semctl', 'semop', 'mq_open', 'mq_timedsend', 'mq_getsetattr']) {
    assert.ok(n in SYSCALLS, `${n} is in the table`);
  }
});

test('syscall table: parameters are named once each, with a known kind, at most six, optional ones last', () => {
  for (const [name, spec] of Object.entries(SYSCALLS)) {
    const firstOptional = spec.params.findIndex((p) => p.endsWith('?'));
    if (firstOptional >= 0) assert.ok(spec.params.slice(firstOptional).every((p) => p.endsWith('?')), `${name}: a required parameter after an optional one`);
    assert.ok(spec.params.length <= 6, `${name}: ${spec.params.length} parameters`);
    const bare = spec.params.map((p) => p.replace(/\?$/, '').split(':')[0]);
    assert.equal(new Set(bare).size, bare.length, `${name}: a parameter named twice`);
    for (const p of spec.params) assert.match(p, /^[a-zA-Z0-9]+(:(ptr|in|str))?\??$/, `${name}: parameter ${p}`);
  }
});

/** A runner that records what it is asked and answers with `result`. */
function recorder(result: number) {
  const calls: { name: SyscallName; args: readonly SyscallArg[]; raw: boolean; detail?: string }[] = [];
  return { calls, invoke: (name: SyscallName, args: readonly SyscallArg[], raw: boolean, detail?: string) => (calls.push({ name, args, raw, detail }), result) };
}

test('typed calls: the method of each name runs that call, its arguments in order', () => {
  const r = recorder(7);
  const sys = new Syscalls(r, false);
  assert.equal(sys.socket(1, 2, 3), 7);
  assert.equal(sys.with('fd 5').dup3(5, 9, 0x80000), 7);
  assert.equal(sys.bind(4, Buffer.from('ab'), 2n), 7);
  assert.equal(new Syscalls(r, true).fcntl(3, F.GETFL, 0), 7);
  assert.deepEqual(r.calls, [
    { name: 'socket', args: [1, 2, 3], raw: false, detail: undefined },
    { name: 'dup3', args: [5, 9, 0x80000], raw: false, detail: 'fd 5' },
    { name: 'bind', args: [4, Buffer.from('ab'), 2n], raw: false, detail: undefined },
    { name: 'fcntl', args: [3, F.GETFL, 0], raw: true, detail: undefined },
  ]);
  for (const name of Object.keys(SYSCALLS)) assert.equal(typeof (sys as unknown as Record<string, unknown>)[name], 'function', name);
});

// Compiled, never run: each line must be a type error, or the build fails (@ts-expect-error unused).
export function typeChecks(sys: Syscalls): void {
  // @ts-expect-error socket takes three arguments
  sys.socket(1, 2);
  // @ts-expect-error an fd is a number, not a path
  sys.close('/tmp');
  // @ts-expect-error bind's address is memory (an address or a Buffer), not a string
  sys.bind(3, 'sock', 2);
  // @ts-expect-error read's buffer is the kernel's to fill: an address the caller reserved, not a Buffer
  sys.read(3, Buffer.alloc(8), 8);
  // @ts-expect-error no such call
  sys.frobnicate(1);
  sys.prctl(PR.GET_DUMPABLE); // prctl's unused arguments may be left out
  sys.open('/tmp', 0, 0);
  sys.setsockopt(3, 1, 2, Buffer.alloc(4), 4);
}

test('typed calls: errors name the call with its command', () => {
  assert.equal(callName('close', [3]), 'close');
  assert.equal(callName('fcntl', [3, F.DUPFD_CLOEXEC, 10]), 'fcntl(F_DUPFD_CLOEXEC)');
  assert.equal(callName('prctl', [PR.SET_NAME, 0n]), 'prctl(PR_SET_NAME)');
  assert.equal(callName('fcntl', [3, 4242, 0]), 'fcntl(4242)');
});

test('KernelError of an injected call: call, pid, errno name and detail', () => {
  const e = new KernelError(`${callName('fcntl', [7, F.SETFL, 0])} (in the task)`, errnoNumber('EBADF'), 4242, 'fd 7');
  assert.equal(e.message, 'fcntl(F_SETFL) (in the task) failed: EBADF (pid 4242, fd 7)');
  assert.equal(e.errnoName, 'EBADF');
});

import { addressOf, syscall } from './libc';
import { SYS } from './constants';
import { SOL_SOCKET } from './sockets';

// The classic BPF program attached to a socket (SO_ATTACH_FILTER), read back with
// SO_GET_FILTER. That option counts in instructions, not bytes, both ways: asked with optlen 0
// it answers the program's length in optlen; asked with room for n instructions it copies them.

const SO_GET_FILTER = 26;
const SOCK_FILTER_SIZE = 8;

/** One u64 per instruction (code u16, jt u8, jf u8, k u32, as the kernel lays them out); none: empty. */
export function socketFilterOf(fd: number): bigint[] {
  const len = Buffer.alloc(4);
  syscall('getsockopt(SO_GET_FILTER)', SYS.getsockopt, [fd, SOL_SOCKET, SO_GET_FILTER, 0, addressOf(len)], { detail: `fd ${fd}` });
  const count = len.readUInt32LE(0);
  if (!count) return [];
  const prog = Buffer.alloc(count * SOCK_FILTER_SIZE);
  len.writeUInt32LE(count, 0);
  syscall('getsockopt(SO_GET_FILTER)', SYS.getsockopt, [fd, SOL_SOCKET, SO_GET_FILTER, addressOf(prog), addressOf(len)], { detail: `fd ${fd}` });
  const out: bigint[] = [];
  for (let i = 0; i < len.readUInt32LE(0) && i < count; i++) out.push(prog.readBigUInt64LE(i * SOCK_FILTER_SIZE));
  return out;
}

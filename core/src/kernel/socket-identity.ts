import { getsockoptInt, SOL_SOCKET } from './sockets';
import { close, takeFd } from './syscalls';

// What a socket fd of a task is (family, type, protocol), asked of the socket itself through
// amber's copy of it: an fd's link says only `socket:[INODE]`, and sock_diag answers for one
// network namespace at a time.

const SO_PROTOCOL = 38;
const SO_DOMAIN = 39;
const SO_TYPE = 3;

export interface SocketIdentity {
  family: number;
  type: number;
  protocol: number;
}

export function identityOfSocket(fd: number): SocketIdentity {
  return {
    family: getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN, 'getsockopt(SO_DOMAIN)'),
    type: getsockoptInt(fd, SOL_SOCKET, SO_TYPE, 'getsockopt(SO_TYPE)'),
    protocol: getsockoptInt(fd, SOL_SOCKET, SO_PROTOCOL, 'getsockopt(SO_PROTOCOL)'),
  };
}

/** The family, type and protocol of fd of task pid (which must be a socket). */
export function identityOfTaskSocket(pid: number, fd: number): SocketIdentity {
  const copy = takeFd(pid, fd);
  try {
    return identityOfSocket(copy);
  } finally {
    close(copy);
  }
}

export * from './constants';
export * from './errors';
export * from './libc';
export * from './syscalls';
export * from './regs';
export * from './signal-trap';
export * from './sockets';
export * from './sock-diag';

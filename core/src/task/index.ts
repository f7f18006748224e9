export * from './proc';
export * from './tree';
export * from './creator';
export * from './task-state';
export * from './fd-transfer';
export * from './seccomp';
export * from './posix-timers';
export * from './io-uring';

export * from './errors';
export * from './memory';
export * from './tracee';
export * from './remote-syscall';
export * from './interrupt';
export * from './wait';
export * from './remote-calls';
export * from './together';
export { frameSlotSize, parkingFrame } from './park';

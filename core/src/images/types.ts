/**
 * TypeScript shapes of the image messages: generated from the .proto files into src/generated
 * (`npm run protos`; a unit test fails when one is out of date). Conventions: 64-bit integers are
 * bigints, 32-bit ones numbers, bytes Buffers, enums numbers; repeated fields are always arrays,
 * optional fields may be undefined. Below: the format's constants that no .proto declares.
 */
import { CoreEntryMarch, FdTypes } from '../generated';

export * from '../generated';

/** The kind of a file description (fdinfo / files.img `type`). */
export const FdType = FdTypes;

export const CoreMarch = CoreEntryMarch;

/** Bits of PagemapEntry.flags. */
export const PagemapFlag = { PARENT: 1, LAZY: 2, PRESENT: 4 } as const;

/** Bits of VmaEntry.status (the VMA_* kinds). */
export const VmaStatus = {
  AREA_NONE: 0,
  AREA_REGULAR: 1 << 0,
  AREA_STACK: 1 << 1,
  AREA_VSYSCALL: 1 << 2,
  AREA_VDSO: 1 << 3,
  AREA_HEAP: 1 << 5,
  FILE_PRIVATE: 1 << 6,
  FILE_SHARED: 1 << 7,
  ANON_SHARED: 1 << 8,
  ANON_PRIVATE: 1 << 9,
  AREA_SYSVIPC: 1 << 10,
  AREA_SOCKET: 1 << 11,
  AREA_VVAR: 1 << 12,
  AREA_AIORING: 1 << 13,
  AREA_MEMFD: 1 << 14,
  // bit 31 (1 << 31 would be negative in JS)
  UNSUPP: 0x80000000,
} as const;

/** The inventory's img_version for "images v1.1". */
export const IMG_VERSION_V1_1 = 2;

/** task_state values of TaskCoreEntry. */
export const TaskState = {
  ALIVE: 1,
  DEAD: 2,
  STOPPED: 3,
  ZOMBIE: 6,
} as const;

type ArrayKeys<T> = { [K in keyof T]-?: T[K] extends readonly unknown[] ? K : never }[keyof T];

/** What a writer gives for a T: its repeated fields may be left out (the codec writes none). */
export type ToWrite<T> = Omit<T, ArrayKeys<T>> & Partial<Pick<T, ArrayKeys<T>>>;

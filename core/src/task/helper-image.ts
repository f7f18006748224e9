import { closeSync, openSync, writeSync } from 'node:fs';
import { F_SEALS, MFD } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { fcntl, memfdCreate } from '../kernel/syscalls';

/**
 * The restore helper's program, built in memory: a static position-independent ELF whose only
 * code is `for (;;) pause();`. It lives in a memfd, so no file a user can run is the helper's
 * executable — which matters because PR_SET_MM_MAP refuses (EBUSY) to replace the exe of a
 * task whose old exe file is still mapped: with `sleep` as the helper, any restored task that
 * maps /usr/bin/sleep (every shell loop's child) could not be given its exe back.
 */
export const HELPER_NAME = 'amber-restore-helper';

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PT_LOAD = 1;
const PT_GNU_STACK = 0x6474e551;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;

/** pause: mov eax, 34; syscall; jmp pause */
const CODE = Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]);

export function helperElf(): Buffer {
  const phnum = 2;
  const codeOffset = EHDR_SIZE + phnum * PHDR_SIZE;
  const size = codeOffset + CODE.length;
  const elf = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2 /* 64-bit */, 1 /* little endian */, 1 /* version */]).copy(elf, 0);
  elf.writeUInt16LE(3, 16); // ET_DYN: loaded at a random base, like any PIE
  elf.writeUInt16LE(62, 18); // EM_X86_64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BigInt(codeOffset), 24); // e_entry
  elf.writeBigUInt64LE(BigInt(EHDR_SIZE), 32); // e_phoff
  elf.writeUInt16LE(EHDR_SIZE, 52);
  elf.writeUInt16LE(PHDR_SIZE, 54);
  elf.writeUInt16LE(phnum, 56);
  const load = EHDR_SIZE;
  elf.writeUInt32LE(PT_LOAD, load);
  elf.writeUInt32LE(PF_R | PF_X, load + 4);
  elf.writeBigUInt64LE(0n, load + 8); // p_offset
  elf.writeBigUInt64LE(0n, load + 16); // p_vaddr
  elf.writeBigUInt64LE(0n, load + 24); // p_paddr
  elf.writeBigUInt64LE(BigInt(size), load + 32); // p_filesz
  elf.writeBigUInt64LE(BigInt(size), load + 40); // p_memsz
  elf.writeBigUInt64LE(0x1000n, load + 48); // p_align
  const stack = EHDR_SIZE + PHDR_SIZE;
  elf.writeUInt32LE(PT_GNU_STACK, stack);
  elf.writeUInt32LE(PF_R | PF_W, stack + 4);
  CODE.copy(elf, codeOffset);
  return elf;
}

/**
 * With vm.memfd_noexec = 1 (Linux >= 6.3) a memfd made without MFD_EXEC cannot be exec'd;
 * kernels before 6.3 do not know the flag (EINVAL).
 */
function executableMemfd(): number {
  try {
    return memfdCreate(HELPER_NAME, MFD.ALLOW_SEALING | MFD_EXEC);
  } catch (e) {
    if (!(e instanceof KernelError && e.errnoName === 'EINVAL')) throw e;
    return memfdCreate(HELPER_NAME, MFD.ALLOW_SEALING);
  }
}

const MFD_EXEC = 0x10;
const F_SEAL_SEAL = 1;
const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;
const F_SEAL_WRITE = 8;

/**
 * A read-only fd (in amber) of a sealed memfd holding the helper's program. Read-only because
 * kernels before 6.11 refuse (ETXTBSY) to exec a file someone holds open for writing.
 */
export function helperMemfd(): number {
  const rw = executableMemfd();
  try {
    const elf = helperElf();
    writeSync(rw, elf, 0, elf.length, 0);
    fcntl(rw, F_SEALS.ADD, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE, 'fcntl(F_ADD_SEALS)');
    return openSync(`/proc/self/fd/${rw}`, 'r');
  } finally {
    closeSync(rw);
  }
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IPC, listShmSegments, parseSysvShm, SHM, shmAttach, shmDetach, shmRemove, shmStat, SYS, syscall } from '@amber/core';

// Recorded from this kernel's /proc/sysvipc/shm (the last line adapted: a key above 0x7fffffff,
// which the kernel prints negative, and pages in swap): keys are printed as signed ints, perms in octal
// with SHM_DEST / SHM_LOCKED.
const SYSVIPC_SHM =
  '       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n' +
  '1248662068          0  2640                 12388 14769 14771      5     0     0     0     0 1796145983          0 1796145983                 12288                     0\n' +
  '         0          1  1600                  4096 14769 14769      2     0     0     0     0 1796145983          0 1796145983                  4096                     0\n' +
  '-1091628510      32770   604                  8192 14769 14769      0  1234  2345  4321  5432 1796145983 1796145983 1796145983                  8192                  4096\n';

test('/proc/sysvipc/shm: signed keys, octal modes with SHM_DEST and SHM_LOCKED, owners and creators, swap', () => {
  const [a, b, c] = parseSysvShm(SYSVIPC_SHM);
  assert.deepEqual([a.key >>> 0, a.id, a.mode, a.size, a.nattch, a.cpid, a.lpid], [0x4a6d1234, 0, 0o2640, 12388n, 5, 14769, 14771]);
  assert.ok(a.mode & SHM.LOCKED);
  assert.deepEqual([b.key, b.mode & SHM.DEST, b.size], [0, SHM.DEST, 4096n]);
  assert.deepEqual([c.key >>> 0, c.id, c.uid, c.gid, c.cuid, c.cgid, c.swap], [0xbeef1222, 32770, 1234, 2345, 4321, 5432, 4096n]);
});

test('shmctl(IPC_STAT) reads struct shmid64_ds as /proc/sysvipc/shm shows the segment', () => {
  const id = syscall('shmget', SYS.shmget, [IPC.PRIVATE, 3 * 4096 + 5, IPC.CREAT | 0o640]);
  try {
    const at = shmAttach(id, SHM.RDONLY);
    try {
      const st = shmStat(id);
      const line = listShmSegments().find((s) => s.id === id);
      assert.ok(line, `shm id ${id} in /proc/sysvipc/shm`);
      assert.deepEqual([st.key, st.mode, st.segsz, st.cpid, st.lpid, Number(st.nattch), st.uid, st.cuid], [0, 0o640, 3n * 4096n + 5n, process.pid, process.pid, 1, process.getuid?.(), process.geteuid?.()]);
      assert.deepEqual([line.mode, line.size, line.cpid, line.nattch], [st.mode, st.segsz, st.cpid, Number(st.nattch)]);
    } finally {
      shmDetach(at);
    }
  } finally {
    shmRemove(id);
  }
});

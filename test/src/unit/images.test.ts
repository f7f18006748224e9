import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  CoreMarch,
  FdType,
  ImageError,
  ImageStore,
  LsmType,
  PagemapFlag,
  TaskState,
  UserX86RegsMode,
  VmaStatus,
  decodeImageFile,
  fpregsFromXsave,
  imageTypeOfFile,
  type CoreEntry,
  type FdinfoEntry,
  type FileEntry,
  type FsEntry,
  type InventoryEntry,
  type MmEntry,
  type PagemapEntry,
  type PstreeEntry,
  type SaEntry,
  type StatsEntry,
  type ToWrite,
  type TaskKobjIdsEntry,
} from '@amber/core';

const PID = 4242;
const ERESTARTNOHAND_RAX = 0xfffffffffffffdfen; // -514 as the kernel leaves it in rax

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'amber-images-'));
}

/** A 2696-byte XSAVE buffer as PTRACE_GETREGSET NT_X86_XSTATE returns on an AVX-512 machine. */
function xsaveBuffer(): Buffer {
  const b = Buffer.alloc(2696);
  b.writeUInt16LE(0x037f, 0); // fcw
  b.writeUInt16LE(0x0020, 2); // fsw
  b.writeUInt16LE(0x00ff, 4); // abridged ftw
  b.writeUInt16LE(0x0001, 6); // fop
  b.writeBigUInt64LE(0x401a2bn, 8);
  b.writeBigUInt64LE(0x7fffffffd8c0n, 16);
  b.writeUInt32LE(0x1fa0, 24); // mxcsr: defaults plus a sticky flag
  b.writeUInt32LE(0xffff, 28);
  for (let i = 32; i < 416; i += 4) b.writeUInt32LE((0x9e3779b9 * i) >>> 0, i);
  b.writeUInt32LE(0x46505853, 464); // FP_XSTATE_MAGIC1 in sw_reserved
  b.writeBigUInt64LE(0x2e7n, 512); // xstate_bv: x87 SSE AVX opmask zmm hi16 pkru
  for (let i = 576; i < 832; i += 4) b.writeUInt32LE((0xdeadbeef ^ i) >>> 0, i);
  return b;
}

function sigactions(): SaEntry[] {
  const out: SaEntry[] = [];
  for (let sig = 1; sig <= 64; sig++) {
    const handled = sig === 10 || sig === 15; // SIGUSR1, SIGTERM
    out.push({
      sigaction: handled ? 0x401196n : sig === 13 ? 1n /* SIG_IGN */ : 0n,
      flags: handled ? 0x14000004n : 0n, // SA_RESTORER|SA_RESTART|SA_SIGINFO
      restorer: handled ? 0x7ffff7dcd050n : 0n,
      mask: handled ? 1n << 9n : 0n,
    });
  }
  return out;
}

const ids: TaskKobjIdsEntry = { vmId: 1, filesId: 2, fsId: 3, sighandId: 4, pidNsId: 5, netNsId: 6, mntNsId: 7 };

function fixtures() {
  const raw = xsaveBuffer();
  const inventory: ToWrite<InventoryEntry> = {
    imgVersion: 2, fdinfoPerId: true, rootIds: ids, nsPerId: true, lsmtype: LsmType.NO_LSM, dumpUptime: 987654321012n, amberPlugins: ['mm', 'fs'],
  };
  const pstree: PstreeEntry[] = [
    { pid: PID, ppid: 1, pgid: PID, sid: 4000, threads: [PID, PID + 1] },
    { pid: PID + 2, ppid: PID, pgid: PID, sid: 4000, threads: [PID + 2] },
  ];
  const core: CoreEntry = {
    mtype: CoreMarch.X86_64,
    threadInfo: {
      clearTidAddr: 0x7ffff7d8aa10n,
      gpregs: {
        r15: 0n, r14: 0x7ffff7ffd000n, r13: 0x7fffffffe3a8n, r12: 0n, bp: 0x7fffffffe280n, bx: 0n,
        r11: 0x246n, r10: 0n, r9: 0x7ffff7fca380n, r8: 0n, ax: ERESTARTNOHAND_RAX, cx: 0x7ffff7e9a7fan,
        dx: 0x7fffffffe290n, si: 0n, di: 0x7fffffffe290n, origAx: 0xe6n, ip: 0x7ffff7e9a7fan, cs: 0x33n,
        flags: 0x246n, sp: 0x7fffffffe248n, ss: 0x2bn, fsBase: 0x7ffff7d8a740n, gsBase: 0n, ds: 0n, es: 0n, fs: 0n,
        gs: 0n, mode: UserX86RegsMode.NATIVE,
      },
      fpregs: fpregsFromXsave(raw),
      tls: [{
        entryNumber: 12, baseAddr: 0, limit: 0, seg32bit: false, contentsH: false, contentsL: false,
        readExecOnly: true, limitInPages: false, segNotPresent: true, usable: false,
      }],
      xsaveRaw: raw,
    },
    tc: {
      taskState: TaskState.ALIVE, exitCode: 0, personality: 0, flags: 0x400040, blkSigset: 0n, comm: 'amber-target',
      rlimits: {
        rlimits: Array.from({ length: 16 }, (_, i) => ({
          cur: i === 7 ? 1024n : 0xffffffffffffffffn, max: i === 7 ? 524288n : 0xffffffffffffffffn,
        })),
      },
      timers: {
        real: { isec: 0n, iusec: 0n, vsec: 1n, vusec: 500000n },
        virt: { isec: 0n, iusec: 0n, vsec: 0n, vusec: 0n },
        prof: { isec: 0n, iusec: 0n, vsec: 0n, vusec: 0n },
        posix: [],
      },
      oomScoreAdj: -100,
      loginuid: 0xffffffff,
      sigactions: sigactions(),
      childSubreaper: false,
    },
    ids,
    threadCore: {
      futexRla: 0x7ffff7d8aa20n, futexRlaLen: 24, schedNice: -5, schedPolicy: 0, schedPrio: 0,
      blkSigset: 0x10000n, pdeathSig: 0, comm: 'amber-target',
      sas: { ssSp: 0n, ssSize: 0n, ssFlags: 2 },
      creds: {
        uid: 1000, gid: 1000, euid: 1000, egid: 1000, suid: 1000, sgid: 1000, fsuid: 1000, fsgid: 1000,
        capInh: [0, 0], capPrm: [0, 0], capEff: [0, 0], capBnd: [0xffffffff, 0x1ff], amberCapAmb: [0, 0], secbits: 0, groups: [1000, 27],
      },
      rseqEntry: { rseqAbiPointer: 0x7ffff7d8b0e0n, rseqAbiSize: 32, signature: 0x53053053 },
    },
  };
  const vma = (start: bigint, end: bigint, prot: number, flags: number, status: number, fd = -1n, pgoff = 0n) =>
    ({ start, end, pgoff, shmid: fd >= 0n ? 11n : 0n, prot, flags, status, fd });
  const mm: MmEntry = {
    mmStartCode: 0x401000n, mmEndCode: 0x401f95n, mmStartData: 0x403e10n, mmEndData: 0x404048n,
    mmStartStack: 0x7fffffffe3a0n, mmStartBrk: 0x405000n, mmBrk: 0x426000n, mmArgStart: 0x7fffffffe5c9n,
    mmArgEnd: 0x7fffffffe5dcn, mmEnvStart: 0x7fffffffe5dcn, mmEnvEnd: 0x7fffffffefe5n, exeFileId: 11,
    mmSavedAuxv: [33n, 0x7ffff7fc1000n, 6n, 4096n, 9n, 0x401040n, 0n, 0n],
    vmas: [
      vma(0x401000n, 0x402000n, 5, 2, VmaStatus.AREA_REGULAR | VmaStatus.FILE_PRIVATE, 11n, 1n),
      vma(0x405000n, 0x426000n, 3, 0x22, VmaStatus.AREA_REGULAR | VmaStatus.AREA_HEAP | VmaStatus.ANON_PRIVATE),
      vma(0x7ffff7fc1000n, 0x7ffff7fc3000n, 5, 0x22, VmaStatus.AREA_REGULAR | VmaStatus.AREA_VDSO),
      vma(0x7ffffffde000n, 0x7ffffffff000n, 3, 0x122, VmaStatus.AREA_REGULAR | VmaStatus.AREA_STACK | VmaStatus.ANON_PRIVATE),
    ],
    dumpable: 1,
    aios: [],
    amberFileStamps: [],
  };
  const pagemapHead = { pagesId: 1 };
  const pagemap: PagemapEntry[] = [
    { vaddr: 0x405000n, nrPages: 33, flags: PagemapFlag.PRESENT },
    { vaddr: 0x7ffffffde000n, nrPages: 2, flags: PagemapFlag.PRESENT },
    { vaddr: 0x7fffffffe000n, nrPages: 1, flags: PagemapFlag.PARENT },
  ];
  const fsEntry: FsEntry = { cwdId: 12, rootId: 13, umask: 0o022 };
  const fdinfo: FdinfoEntry[] = [0, 1, 2].map((fd) => ({ id: 14 + fd, flags: 0, type: FdType.REG, fd }));
  fdinfo.push({ id: 17, flags: 1 /* FD_CLOEXEC */, type: FdType.REG, fd: 5 });
  const fown = { uid: 0, euid: 0, signum: 0, pidType: 0, pid: 0 };
  const reg = (id: number, name: string, flags: number, pos: bigint) =>
    ({ type: FdType.REG, id, reg: { id, flags, pos, fown, name, mntId: 27, size: 8192n, mode: 0o100644, buildId: [] } });
  const files: FileEntry[] = [
    reg(11, '/usr/local/bin/amber-target', 0o100000, 0n),
    reg(14, '/dev/null', 0o100000, 0n),
    reg(15, '/tmp/amber-test.log', 0o102001, 4096n),
    reg(16, '/tmp/amber-test.log', 0o102001, 4096n),
    reg(17, '/tmp/data with spaces.bin', 0o100002, 0xfffffffffffn),
  ];
  const stats: StatsEntry = {
    dump: {
      freezingTime: 1200, frozenTime: 35000, memdumpTime: 12000, memwriteTime: 9000, pagesScanned: 1n << 33n,
      pagesSkippedParent: 0n, pagesWritten: 36n, pagesLazy: 0n,
    },
  };
  return { inventory, pstree, core, mm, pagemapHead, pagemap, fsEntry, fdinfo, files, stats };
}

type Fx = ReturnType<typeof fixtures>;

function writeSet(dir: string, fx: Fx): ImageStore {
  const store = ImageStore.forDump(dir);
  store.write('pstree', 'pstree', fx.pstree);
  store.write('core', `core-${PID}`, [fx.core]);
  store.write('ids', `ids-${PID}`, [ids]);
  store.write('mm', `mm-${PID}`, [fx.mm]);
  store.write('pagemap', `pagemap-${PID}`, fx.pagemap, { head: fx.pagemapHead });
  store.write('fs', `fs-${PID}`, [fx.fsEntry]);
  store.write('fdinfo', 'fdinfo-2', fx.fdinfo);
  store.write('files', 'files', fx.files);
  store.write('stats', 'stats-dump', [fx.stats]);
  store.createPages(1, Buffer.alloc(35 * 4096, 0xab));
  store.writeInventory(fx.inventory);
  return store;
}

test('every image type round-trips exactly', () => {
  const fx = fixtures();
  const dir = tmpDir();
  writeSet(dir, fx);
  const s = ImageStore.forRead(dir);
  const { amberImages, ...inventory } = s.readInventory();
  assert.deepEqual(inventory, fx.inventory);
  // every image but the inventory, with its size; pages files hashed by samples
  assert.deepEqual(amberImages?.map((d) => [d.name, Number(d.size), d.sampled === true, d.sha256.length]), s.list().filter((f) => f !== 'inventory.img')
    .map((f) => [f, fs.statSync(path.join(dir, f)).size, f.startsWith('pages-'), 32]));
  assert.deepEqual(s.read('pstree', 'pstree').entries, fx.pstree);
  const core = s.read<CoreEntry>('core', `core-${PID}`);
  assert.deepEqual(core.entries, [fx.core]);
  assert.equal(core.entries[0].threadInfo?.gpregs.ax, ERESTARTNOHAND_RAX);
  assert.equal(core.entries[0].tc?.sigactions.length, 64);
  assert.equal(core.entries[0].tc?.rlimits?.rlimits[0].max, 0xffffffffffffffffn);
  assert.deepEqual(s.read('ids', `ids-${PID}`).entries, [ids]);
  assert.deepEqual(s.read('mm', `mm-${PID}`).entries, [fx.mm]);
  const pm = s.read<PagemapEntry>('pagemap', `pagemap-${PID}`);
  assert.deepEqual(pm.head, fx.pagemapHead);
  assert.deepEqual(pm.entries, fx.pagemap);
  assert.deepEqual(s.read('fs', `fs-${PID}`).entries, [fx.fsEntry]);
  assert.deepEqual(s.read('fdinfo', 'fdinfo-2').entries, fx.fdinfo);
  assert.deepEqual(s.read('files', 'files').entries, fx.files);
  assert.deepEqual(s.read('stats', 'stats-dump').entries, [fx.stats]);
  assert.deepEqual(s.list(), [
    'core-4242.img', 'fdinfo-2.img', 'files.img', 'fs-4242.img', 'ids-4242.img', 'inventory.img', 'mm-4242.img',
    'pagemap-4242.img', 'pages-1.img', 'pstree.img', 'stats-dump.img',
  ]);
  for (const f of s.list()) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
  assert.ok(s.has('files') && !s.has('files-9'));
});

test('a pagemap is read and decoded once: the set check hands its bytes and decoding to the first reader', () => {
  const fx = fixtures();
  const dir = tmpDir();
  writeSet(dir, fx);
  // the node:fs module itself (core's `import * as fs` reads its properties live)
  // (readFileSync of a path opens it through the module's openSync too)
  const nodeFs = require('node:fs') as { openSync: typeof fs.openSync };
  const { openSync } = nodeFs;
  let reads = 0;
  const isPagemap = (file: unknown) => typeof file === 'string' && file.endsWith(`pagemap-${PID}.img`);
  nodeFs.openSync = ((file: fs.PathLike, ...rest: unknown[]) => {
    if (isPagemap(file)) reads++;
    return (openSync as (...a: unknown[]) => unknown)(file, ...rest);
  }) as typeof fs.openSync;
  try {
    const s = ImageStore.forRead(dir);
    assert.equal(reads, 1);
    const first = s.read<PagemapEntry>('pagemap', `pagemap-${PID}`);
    assert.equal(reads, 1);
    assert.deepEqual(first.entries, fx.pagemap);
    assert.deepEqual(first.head, fx.pagemapHead);
    // handed over once: a later reader reads and decodes its own copy
    const again = s.read<PagemapEntry>('pagemap', `pagemap-${PID}`);
    assert.equal(reads, 2);
    assert.notEqual(again.entries, first.entries);
    assert.deepEqual(again.entries, fx.pagemap);
  } finally {
    nodeFs.openSync = openSync;
  }
});

test('64-bit extremes survive and out-of-range values are refused', () => {
  const dir = tmpDir();
  const s = ImageStore.forDump(dir);
  const fx = fixtures();
  const edge = { ...fx.mm.vmas[0], start: 0n, end: 0xffffffffffffffffn, fd: -(1n << 63n), pgoff: (1n << 63n) + 1n };
  s.write('mm', 'mm-1', [{ ...fx.mm, vmas: [edge] }]);
  assert.deepEqual(s.read<MmEntry>('mm', 'mm-1').entries[0].vmas[0], edge);
  assert.throws(() => s.write('mm', 'mm-2', [{ ...fx.mm, mmBrk: 1n << 64n }]), /mm-2\.img: entry 0: mmBrk: .* does not fit/);
  assert.throws(() => s.write('mm', 'mm-2', [{ ...fx.mm, mmBrk: 5 }]), /mmBrk: expected a bigint/);
  const { comm: _drop, ...noComm } = fx.core.tc!;
  assert.throws(() => s.write('core', 'core-1', [{ ...fx.core, tc: noComm }]),
    (e: unknown) => e instanceof ImageError && /core-1\.img: entry 0: missing required field tc\.comm/.test(e.message));
  assert.throws(() => s.write('fs', 'fs-1', [{ ...fx.fsEntry, cwd: 3 }]), /fs-1\.img: entry 0: cwd: FsEntry has no such field/);
  assert.throws(() => s.write('pagemap', 'pagemap-1', fx.pagemap), /needs a head/);
  assert.equal(s.has('mm-2') || s.has('core-1') || s.has('fs-1'), false);
});

test('fpregsFromXsave reads the FXSAVE area and the AVX upper halves', () => {
  const raw = xsaveBuffer();
  const fp = fpregsFromXsave(raw);
  assert.equal(fp.cwd, 0x37f);
  assert.equal(fp.twd, 0xff);
  assert.equal(fp.mxcsr, 0x1fa0);
  assert.equal(fp.rdp, 0x7fffffffd8c0n);
  assert.equal(fp.stSpace.length, 32);
  assert.equal(fp.xmmSpace.length, 64);
  assert.equal(fp.xmmSpace[0], raw.readUInt32LE(160));
  assert.equal(fp.padding.length, 12);
  assert.equal(fp.xsave?.xstateBv, 0x2e7n);
  assert.equal(fp.xsave?.ymmhSpace[63], raw.readUInt32LE(576 + 63 * 4));
  assert.equal(fpregsFromXsave(raw.subarray(0, 512)).xsave, undefined);
  assert.throws(() => fpregsFromXsave(Buffer.alloc(100)), ImageError);
});

function crit(file: string): { text: string; json: { magic: string; entries: Record<string, any>[] } } {
  const r = spawnSync('crit', ['decode', '-i', file], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `cannot run crit: ${r.error?.message}`);
  assert.equal(r.status, 0, `crit decode ${path.basename(file)} failed: ${r.stderr}`);
  return { text: r.stdout, json: JSON.parse(r.stdout) };
}

test('crit (CRIU 3.17) decodes every image amber writes', () => {
  const fx = fixtures();
  const dir = tmpDir();
  writeSet(dir, fx);
  const at = (f: string) => path.join(dir, f);

  const inv = crit(at('inventory.img')).json;
  assert.equal(inv.magic, 'INVENTORY');
  assert.equal(inv.entries[0].img_version, 2);
  assert.equal(inv.entries[0].root_ids.files_id, 2);

  const ps = crit(at('pstree.img')).json;
  assert.equal(ps.magic, 'PSTREE');
  assert.deepEqual(ps.entries.map((e) => e.pid), [PID, PID + 2]);
  assert.deepEqual(ps.entries[0].threads, [PID, PID + 1]);

  const core = crit(at(`core-${PID}.img`));
  assert.equal(core.json.magic, 'CORE');
  const ti = core.json.entries[0].thread_info;
  assert.equal(ti.gpregs.ip, 0x7ffff7e9a7fa);
  assert.equal(ti.gpregs.mode, 'NATIVE');
  assert.match(core.text, /"ax": 18446744073709551102\b/); // exact, not a rounded float
  assert.equal(ti.fpregs.mxcsr, 0x1fa0);
  assert.equal(ti.fpregs.xsave.ymmh_space.length, 64);
  assert.equal(ti.xsave_raw, undefined, 'crit skips the amber extension field');
  assert.equal(core.json.entries[0].tc.sigactions.length, 64);
  assert.equal(core.json.entries[0].tc.comm, 'amber-target');
  assert.equal(core.json.entries[0].thread_core.rseq_entry.signature, 0x53053053);

  assert.equal(crit(at(`ids-${PID}.img`)).json.entries[0].vm_id, 1);
  const mm = crit(at(`mm-${PID}.img`)).json;
  assert.equal(mm.entries[0].vmas.length, 4);
  assert.equal(mm.entries[0].vmas[1].fd, -1);

  const pm = crit(at(`pagemap-${PID}.img`)).json;
  assert.equal(pm.entries[0].pages_id, 1);
  assert.deepEqual(pm.entries.slice(1).map((e) => e.nr_pages), [33, 2, 1]);

  assert.equal(crit(at(`fs-${PID}.img`)).json.entries[0].umask, 0o022);
  const fdi = crit(at('fdinfo-2.img')).json;
  assert.deepEqual(fdi.entries.map((e) => [e.fd, e.type]), [[0, 'REG'], [1, 'REG'], [2, 'REG'], [5, 'REG']]);
  const files = crit(at('files.img')).json;
  assert.equal(files.entries[2].reg.name, '/tmp/amber-test.log');
  assert.equal(files.entries[2].reg.pos, 4096);
  assert.equal(files.entries[4].reg.name, '/tmp/data with spaces.bin');
  const stats = crit(at('stats-dump.img')).json;
  assert.equal(stats.magic, 'STATS');
  assert.equal(stats.entries[0].dump.pages_written, 36);
});

test('decodeImageFile renders any image as JSON, hex for addresses', () => {
  const dir = tmpDir();
  writeSet(dir, fixtures());
  const core = decodeImageFile(path.join(dir, `core-${PID}.img`));
  assert.equal(core.type, 'core');
  assert.equal(core.magic, 0x55053847);
  const ti = core.entries[0].threadInfo as Record<string, any>;
  assert.equal(ti.gpregs.ax, '0xfffffffffffffdfe');
  assert.equal(ti.gpregs.mode, 'NATIVE');
  assert.equal(ti.xsaveRaw.length, 2696);
  assert.equal(core.entries[0].mtype, 'X86_64');
  const mm = decodeImageFile(path.join(dir, `mm-${PID}.img`));
  const vmas = (mm.entries[0].vmas as Record<string, any>[]);
  assert.equal(vmas[2].start, '0x7ffff7fc1000');
  assert.equal(vmas[2].fd, -1);
  assert.equal(decodeImageFile(path.join(dir, 'stats-dump.img')).entries[0].dump !== undefined, true);
  const pm = decodeImageFile(path.join(dir, `pagemap-${PID}.img`));
  assert.deepEqual(pm.head, { pagesId: 1 });
  const pages = decodeImageFile(path.join(dir, 'pages-1.img'));
  assert.deepEqual([pages.type, pages.rawBytes], ['pages', 35 * 4096]);
  assert.equal(imageTypeOfFile(path.join(dir, 'inventory.img')), 'inventory');
  JSON.stringify(core); // no bigint, no cycles
});

// What CRIU 4.x writes differently from its older images and from amber's first ones, read and
// written the way both sides understand (the interop tests prove it with CRIU itself, when present).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  decodeImageFile, fpregsFromXsave, imageRegisters, NSIG, Registers, registersOf, SIG, SIGACTION_SIGNALS, sigactionOf, signalOfSigaction,
  ImageStore, SYS, xsaveFromFpregs, type CoreEntry,
} from '@amber/core';
import '@amber/plugin-mm'; // registers shmem.img

const varint = (n: number): number[] => {
  const out: number[] = [];
  for (; n > 0x7f; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
};
const framed = (msg: number[]): number[] => [...Buffer.from(new Uint32Array([msg.length]).buffer), ...msg];

test("a pagemap entry as CRIU 4.x writes it (0 in the old count, the count in field 5) reads as its page count", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amber-criu-compat-'));
  try {
    const magic = Buffer.from(new Uint32Array([0x54564319, 0x56084025]).buffer);
    const head = [0x08, 1]; // pages_id 1
    const entry = [0x08, ...varint(0x400000), 0x10, 0, 0x20, 4, 0x28, 3]; // vaddr, nr_pages 0, flags PRESENT, field 5 = 3
    const file = path.join(dir, 'pagemap-1.img');
    fs.writeFileSync(file, Buffer.concat([magic, Buffer.from([...framed(head), ...framed(entry)])]));
    const decoded = decodeImageFile(file);
    const e = decoded.entries[0] as Record<string, unknown>;
    assert.equal(decoded.entries.length, 1, 'the head and one entry');
    assert.equal(Number(e.nrPages), 3, `CRIU 4.x's count, read from field 5: ${JSON.stringify(e)}`);
    assert.equal(e.nrPages64, undefined, 'the 64-bit copy is folded into nrPages');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('sigactions: 62 entries as CRIU writes them (no SIGKILL, SIGSTOP), and amber\'s earlier 64 still read', () => {
  assert.equal(SIGACTION_SIGNALS.length, 62);
  assert.ok(!SIGACTION_SIGNALS.includes(SIG.KILL) && !SIGACTION_SIGNALS.includes(SIG.STOP));
  assert.equal(signalOfSigaction(8, 62), 10, 'entry 8 of 62 is SIGUSR1 (after HUP..FPE, no KILL)');
  assert.equal(signalOfSigaction(8, NSIG), 9);
  const criu = SIGACTION_SIGNALS.map((s) => s);
  const old = Array.from({ length: NSIG }, (_, i) => i + 1);
  assert.equal(sigactionOf(criu, SIG.USR1), SIG.USR1);
  assert.equal(sigactionOf(old, SIG.USR1), SIG.USR1);
  assert.equal(sigactionOf(criu, SIG.KILL), undefined);
});

test('a thread dumped inside a syscall: gpregs as CRIU restores them, amber\'s own restart kept beside them', () => {
  const cases: [bigint, bigint, bigint][] = [
    // code, rax CRIU wants, rip offset
    [-512n, BigInt(SYS.read), -2n],
    [-514n, BigInt(SYS.read), -2n],
    [-516n, BigInt.asUintN(64, -4n), 0n],
  ];
  for (const [code, ax, ipDelta] of cases) {
    const r = new Registers();
    r.set('ip', 0x401000n);
    r.set('origAx', SYS.read);
    r.set('ax', code);
    const { regs, restartAx } = imageRegisters(r);
    assert.equal(regs.get('ax'), ax, `code ${code}: rax`);
    assert.equal(regs.get('ip'), 0x401000n + ipDelta, `code ${code}: rip`);
    assert.equal(restartAx, code);
    const core = { mtype: 1, threadInfo: { clearTidAddr: 0n, gpregs: { ...regs.toRecord(), mode: 1 }, fpregs: fpregsFromXsave(Buffer.alloc(512)), tls: [], amberRestartAx: restartAx } } as unknown as CoreEntry;
    const back = registersOf(core);
    assert.equal(back.get('ax'), r.get('ax'), `code ${code}: amber's restore sees the kernel's code again`);
    assert.equal(back.get('ip'), r.get('ip'));
  }
  const running = new Registers();
  running.set('origAx', -1n);
  running.set('ax', -516n);
  assert.equal(imageRegisters(running).restartAx, undefined, 'not in a syscall: as is');
});

test('an xsave buffer rebuilt from CRIU\'s field-by-field FPU message carries MXCSR, x87 and the vector registers', () => {
  const raw = Buffer.alloc(832);
  for (let i = 0; i < raw.length; i += 4) raw.writeUInt32LE((0x9e3779b9 * (i + 1)) >>> 0, i);
  raw.writeUInt16LE(0x007f, 0);
  raw.writeUInt32LE(0x7f80, 24);
  raw.writeBigUInt64LE(7n, 512); // xstate_bv: x87, SSE, AVX
  const template = Buffer.alloc(832);
  const rebuilt = xsaveFromFpregs(fpregsFromXsave(raw), template);
  assert.equal(rebuilt.length, template.length);
  assert.equal(rebuilt.readUInt16LE(0), 0x007f, 'x87 control word');
  assert.equal(rebuilt.readUInt32LE(24), 0x7f80, 'MXCSR');
  assert.deepEqual(rebuilt.subarray(32, 416), raw.subarray(32, 416), 'st0-7 and xmm0-15');
  assert.equal(rebuilt.readBigUInt64LE(512), 7n, 'xstate_bv');
  assert.deepEqual(rebuilt.subarray(576, 832), raw.subarray(576, 832), 'upper halves of ymm0-15');
});

test("amber show says which images are amber's own, which CRIU does not read", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amber-criu-compat-'));
  try {
    const store = ImageStore.forDump(dir);
    store.write('mm-shmem', 'shmem', [{ id: 1, kind: 1, size: 4096n, pagesId: 1 }]);
    store.write('ids', 'ids-1', [{ vmId: 1, filesId: 2, fsId: 3, sighandId: 4 }]);
    assert.match(decodeImageFile(path.join(dir, 'shmem.img')).notes?.[0] ?? '', /^an image of amber's own, which CRIU does not read: /);
    assert.equal(decodeImageFile(path.join(dir, 'ids-1.img')).notes, undefined, 'a CRIU image has no such note');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

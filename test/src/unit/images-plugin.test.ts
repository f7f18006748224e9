import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageError, ImageStore, decodeImageFile, imageTypeOfFile, registerImageType, type FownEntry } from '@amber/core';

// A third-party plugin's schema: its own package, reusing amber's FownEntry.
const PROTO = `
syntax = "proto2";
package acme;
import "files.proto";

message QueueHead {
  required uint32 version = 1;
}

message QueueEntry {
  required uint32 id = 1;
  required uint64 addr = 2 [(hex) = true];
  required uint32 length = 3;
  optional amber.FownEntry fown = 4;
  required sint64 delta = 5;
}
`;

interface QueueEntry {
  id: number;
  addr: bigint;
  length: number;
  fown?: FownEntry;
  delta: bigint;
}

// One schema file per process: a second file defining package acme again would clash.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amber-images-plugin-'));
const proto = path.join(dir, 'acme-queue.proto');
fs.writeFileSync(proto, PROTO);

test('a plugin registers its own image type, with a head and 8-byte-aligned blobs', () => {
  const def = {
    type: 'acme-queue',
    magic: 0x61636d65,
    protoFile: proto,
    message: 'acme.QueueEntry',
    headMessage: 'acme.QueueHead',
    blobLength: (e: QueueEntry) => e.length,
    blobAlign: 8,
  };
  registerImageType(def);
  registerImageType(def); // the same definition again is harmless

  const entries: QueueEntry[] = [
    { id: 1, addr: 0x7ffff7a00000n, length: 5, delta: -3n, fown: { uid: 1000, euid: 1000, signum: 29, pidType: 1, pid: 42 } },
    { id: 2, addr: 0xffffffffff600000n, length: 0, delta: 1n << 62n },
    { id: 3, addr: 0n, length: 16, delta: 0n },
  ];
  const blobs = [Buffer.from('hello'), undefined, Buffer.alloc(16, 7)];
  const store = ImageStore.forDump(path.join(dir, 'img'));
  store.write('acme-queue', 'acme-queue-7', entries, { head: { version: 3 }, blobs });

  const file = path.join(store.dir, 'acme-queue-7.img');
  const raw = fs.readFileSync(file);
  assert.equal(raw.readUInt32LE(0), 0x54564319);
  assert.equal(raw.readUInt32LE(4), 0x61636d65);

  const back = store.read<QueueEntry>('acme-queue', 'acme-queue-7');
  assert.deepEqual(back.head, { version: 3 });
  assert.deepEqual(back.entries, entries);
  assert.deepEqual(back.blobs, [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(16, 7)]);

  assert.equal(imageTypeOfFile(file), 'acme-queue');
  const shown = decodeImageFile(file);
  assert.equal(shown.type, 'acme-queue');
  assert.equal(shown.entries[1].addr, '0xffffffffff600000');
  assert.equal(shown.entries[0].delta, -3);
  assert.deepEqual(shown.blobs?.[0], { length: 5, base64: Buffer.from('hello').toString('base64') });

  // A blob whose size disagrees with its entry is refused before anything is written.
  assert.throws(() => store.write('acme-queue', 'acme-queue-8', entries, { head: { version: 3 }, blobs: [] }),
    (e: unknown) => e instanceof ImageError && /acme-queue-8\.img: entry 0: blob is 0 bytes but the entry says 5/.test(e.message));
  // A truncated blob is reported like a truncated entry.
  fs.writeFileSync(file, raw.subarray(0, raw.length - 3));
  assert.throws(() => store.read('acme-queue', 'acme-queue-7'),
    (e: unknown) => e instanceof ImageError && /^acme-queue-7\.img: blob of entry 2 at offset \d+ is truncated \(wants 16 bytes, 13 left\)$/.test(e.message));
});

test('registration clashes and bad schemas are ImageErrors', () => {
  const base = { type: 'acme-other', magic: 0x61636d66, protoFile: proto, message: 'acme.QueueEntry' };
  assert.throws(() => registerImageType({ ...base, magic: 0x50273030 }), /magic 0x50273030 already belongs to pstree/);
  assert.throws(() => registerImageType({ ...base, type: 'core' }), /image type core is already registered/);
  assert.throws(() => registerImageType({ ...base, magic: 0x54564319 }), /reserved/);
  assert.throws(() => registerImageType({ ...base, message: 'acme.Nope' }), /has no message acme\.Nope/);
  assert.throws(() => registerImageType({ ...base, protoFile: 'rel.proto' }), /not an absolute path/);
  const broken = path.join(path.dirname(proto), 'broken.proto');
  fs.writeFileSync(broken, 'syntax = "proto2"; package broken; message X { required uint32 = 1; }');
  assert.throws(() => registerImageType({ ...base, protoFile: broken, message: 'broken.X' }),
    (e: unknown) => e instanceof ImageError && /cannot load image schema .*broken\.proto/.test(e.message));
  const twin = path.join(dir, 'twin.proto');
  fs.writeFileSync(twin, PROTO);
  assert.throws(() => registerImageType({ ...base, protoFile: twin }),
    (e: unknown) => e instanceof ImageError && /twin\.proto: duplicate name/.test(e.message));
});

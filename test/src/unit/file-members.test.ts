import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { container } from 'tsyringe';
import {
  AmberError, FileRegistry, ImageError, ImageStore, IMG_COMMON_MAGIC, NO_FOWN, PluginRegistry, RESOURCE_PLUGIN, decodeImageFile, fileEntryMembers,
  type FileKind, type FownEntry, type ResourcePlugin,
} from '@amber/core';
import FilesPlugin from '@amber/plugin-fs';
import { amber, describeAmber } from '../harness';

// A third party's fd kind: its member of files.img, in its own .proto, reusing amber's FownEntry.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amber-file-members-'));
const proto = path.join(dir, 'acme-widget.proto');
fs.writeFileSync(proto, `
syntax = "proto2";
package acmefd;
import "files.proto";

message WidgetEntry {
  required uint32 id = 1;
  required uint32 flags = 2;
  required amber.FownEntry fown = 3;
  required uint64 serial = 4;
}
`);

interface WidgetEntry {
  id: number;
  flags: number;
  fown: FownEntry;
  serial: bigint;
}

const WIDGET_FD_TYPE = 0x4000;

function widgetKind(member: Partial<FileKind['member']> = {}, name = 'widget'): FileKind<WidgetEntry> {
  return {
    fdType: WIDGET_FD_TYPE,
    name,
    member: { field: 1000, name: 'acmeWidget', protoFile: proto, message: 'acmefd.WidgetEntry', ...member },
    claims: () => false,
    dumpDescription: (_ctx, _task, _fd, id) => ({ id, flags: 2, fown: NO_FOWN, serial: 1n << 40n }),
    openDescription: () => -1,
  };
}

/** Loads plugins the way amber does (the registry resolves them from a DI container). */
function load(...kinds: FileKind[]): PluginRegistry {
  const c = container.createChildContainer();
  kinds.forEach((k, i) => {
    const plugin: ResourcePlugin = { name: `acme${i}`, phase: 'resources', fileKinds: [k] };
    c.register(RESOURCE_PLUGIN, { useValue: plugin });
  });
  return new PluginRegistry(c);
}

test("a kind's member joins files.img's FileEntry when its plugin loads; the kind reads back only its member, typed", () => {
  const kind = widgetKind();
  load(kind);
  load(kind); // a plugin loaded again is harmless
  assert.deepEqual(fileEntryMembers().find((m) => m.field === 1000), { field: 1000, name: 'acmeWidget', owner: "the acme0 plugin's widget kind" });

  const files = new FileRegistry();
  const widget: WidgetEntry = { id: 7, flags: 2, fown: { ...NO_FOWN, pid: 42, pidType: 1 }, serial: 1n << 40n };
  files.add(kind, 7, widget);
  const store = ImageStore.forDump(path.join(dir, 'img'));
  store.write('files', 'files', files.entries());

  const back = FileRegistry.read(store);
  assert.deepEqual(back.get(7), { id: 7, type: WIDGET_FD_TYPE, member: 'acmeWidget', entry: widget });
  const serial: bigint | undefined = back.member(kind, 7)?.serial; // typed: no cast
  assert.equal(serial, 1n << 40n);
  // another kind's member is not this kind's
  const other = widgetKind({ field: 1001, name: 'acmeGadget' }, 'gadget');
  assert.equal(back.member(other, 7), undefined);
  assert.throws(() => back.entry(other, 7), /file id 7 \(type 16384\) is not a gadget description \(acmeGadget\): its member is acmeWidget/);

  const shown = decodeImageFile(path.join(store.dir, 'files.img'));
  assert.deepEqual(shown.entries[0], { type: WIDGET_FD_TYPE, id: 7, acmeWidget: { id: 7, flags: 2, fown: { uid: 0, euid: 0, signum: 0, pidType: 1, pid: 42 }, serial: 1099511627776 } });
  assert.equal(shown.notes, undefined);
});

test('a member whose number or name another kind (or the core) uses is an error at load, naming both', () => {
  load(widgetKind());
  const clash = (member: Partial<FileKind['member']>) => () => load(widgetKind(member, 'intruder'));
  assert.throws(clash({ name: 'acmeOther' }), (e: unknown) => e instanceof ImageError &&
    e.message === "the acme0 plugin's intruder kind: files.img member acmeOther (field 1000, acmefd.WidgetEntry) clashes with acmeWidget (field 1000, acmefd.WidgetEntry) of the acme0 plugin's widget kind");
  assert.throws(clash({ field: 1002 }), /member acmeWidget \(field 1002, acmefd\.WidgetEntry\) clashes with acmeWidget \(field 1000, acmefd\.WidgetEntry\) of the acme0 plugin's widget kind/);
  // the same member from a different kind is a clash too: one member, one owner
  assert.throws(clash({}), /intruder kind: .* clashes with acmeWidget \(field 1000, acmefd\.WidgetEntry\) of the acme0 plugin's widget kind/);
  assert.throws(clash({ field: 3, name: 'acmeReg' }), /clashes with reg \(field 3, amber\.RegFileEntry\) of the core/);
  assert.throws(clash({ field: 1003, name: 'type' }), /clashes with type \(field 1, amber\.FdTypes\) of the core/);
  assert.throws(clash({ field: 1004, name: 'acmeNope', message: 'acmefd.Nope' }), /has no message acmefd\.Nope/);
  assert.throws(clash({ field: 19500, name: 'acmeReserved' }), /reserved 19000-19999/);
  // nothing was added by the refused ones
  assert.deepEqual(fileEntryMembers().filter((m) => m.field >= 1000).map((m) => m.name), ['acmeWidget']);
});

test("the fs plugin's kinds declare CRIU's FileEntry field numbers", () => {
  const c = container.createChildContainer();
  c.register(RESOURCE_PLUGIN, { useClass: FilesPlugin });
  const fsPlugin = new PluginRegistry(c).get('fs');
  const members = Object.fromEntries((fsPlugin?.fileKinds ?? []).map((k) => [k.member.name, k.member.field]));
  assert.deepEqual(members, { reg: 3, pipe: 18, fifo: 17, efd: 8, sgfd: 10, tfd: 12, epfd: 9, ify: 13, memfd: 20, pidfd: 22, ffy: 14 });
  for (const [name, field] of Object.entries(members)) assert.ok(fileEntryMembers().some((m) => m.name === name && m.field === field), name);
});

test("files.img with a member no loaded plugin declares: show gives the field raw, with a note, never drops it silently", () => {
  // FileEntry {type 15 (TUNF), id 9} and field 11 (CRIU's tunf), which nothing in this process declares
  const usk = Buffer.from([0x08, 0x09, 0x10, 0x01]); // a small message: {1: 9, 2: 1}
  const payload = Buffer.concat([Buffer.from([0x08, 0x0f, 0x10, 0x09]), Buffer.from([(11 << 3) | 2, usk.length]), usk]);
  const head = Buffer.alloc(12);
  head.writeUInt32LE(IMG_COMMON_MAGIC, 0);
  head.writeUInt32LE(0x56303138, 4);
  head.writeUInt32LE(payload.length, 8);
  const imgDir = fs.mkdtempSync(path.join(dir, 'unknown-'));
  const file = path.join(imgDir, 'files.img');
  fs.writeFileSync(file, Buffer.concat([head, payload]));

  const shown = decodeImageFile(file);
  assert.deepEqual(shown.entries, [{ type: 'TUNF', id: 9, 'unknown field 11': { length: 4, base64: usk.toString('base64') } }]);
  assert.equal(shown.notes?.length, 1);
  assert.match(shown.notes![0], /^1 entry carries field 11, which FileEntry does not declare here: the member of a file kind whose plugin is not loaded \(--plugin PATH loads it\); shown raw as "unknown field 11"$/);

  const r = amber(['show', file]);
  assert.equal(r.status, 0, describeAmber(['show', file], r));
  assert.match(r.stdout, /note: 1 entry carries field 11, which FileEntry does not declare here/);
  assert.match(r.stdout, /unknown field 11: <4 bytes>/);
  // and a restore-side read still knows the description's type and id, without a member
  assert.deepEqual(new FileRegistry([{ type: 5, id: 9 }]).get(9), { id: 9, type: 5 });
  const two = { type: 1, id: 3, reg: { id: 3, flags: 0, pos: 0n, fown: NO_FOWN, name: '/x', buildId: [] }, acmeWidget: { id: 3 } };
  assert.throws(() => new FileRegistry([two]), (e: unknown) => e instanceof AmberError && /^files\.img: file id 3 carries 2 members \(reg, acmeWidget\), not one \(corrupt image\)$/.test(e.message));
});

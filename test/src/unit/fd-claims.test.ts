import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FdTable, PluginError, PluginRegistry, REG_MEMBER, RESOURCE_PLUGIN, UnclaimedFdError, checkFeatures,
  type FdResource, type FileKind, type ResourcePlugin,
} from '@amber/core';
import { container } from 'tsyringe'; // after @amber/core, which loads reflect-metadata

const fd = (link: string): FdResource => ({
  pid: 4242, fd: 7, link, mode: 0o100644, uid: 0, gid: 0, dev: 1n, ino: 2n, rdev: 0n, size: 0n,
  info: { pos: 0n, flags: 0, mntId: 0, extra: new Map() },
});

function kind(name: string, fdType: number, claims: (f: FdResource) => boolean): FileKind {
  return {
    fdType, name, claims, member: REG_MEMBER,
    dumpDescription: () => assert.fail('not dumped here'),
    openDescription: () => assert.fail('not opened here'),
  };
}

const plugin = (name: string, ...fileKinds: FileKind[]): ResourcePlugin => ({ name, phase: 'resources', fileKinds });

test('two kinds of two plugins claiming one fd is an error naming both kinds and plugins, not a silent first wins', () => {
  const table = new FdTable([
    plugin('fs', kind('eventfd', 6, (f) => f.link === 'anon_inode:[eventfd]')),
    plugin('acme', kind('acme-efd', 99, (f) => f.link.startsWith('anon_inode:'))),
  ]);
  assert.equal(table.route(fd('anon_inode:[timerfd]')).name, 'acme-efd', 'one claimant: routed to it');
  assert.throws(() => table.route(fd('anon_inode:[eventfd]')), (e: Error) => {
    assert.match(e.message, /^fd 7 of pid 4242 is anon_inode:\[eventfd\], which 2 fd kinds claim: 'eventfd' \(plugin fs\) and 'acme-efd' \(plugin acme\)/);
    return true;
  });
  assert.throws(() => table.route(fd('/tmp/x')), UnclaimedFdError);
});

test('two kinds with one fd type are refused when the plugins are loaded, naming both', () => {
  const child = container.createChildContainer();
  child.register(RESOURCE_PLUGIN, { useValue: plugin('fs', kind('eventfd', 6, () => false)) });
  child.register(RESOURCE_PLUGIN, { useValue: plugin('acme', kind('acme-efd', 6, () => false)) });
  assert.throws(() => new PluginRegistry(child), (e: Error) => {
    assert.ok(e instanceof PluginError, String(e));
    assert.match(e.message, /fd kinds 'eventfd' \(plugin fs\) and 'acme-efd' \(plugin acme\) both have fd type 6/);
    return true;
  });
  const fine = container.createChildContainer();
  fine.register(RESOURCE_PLUGIN, { useValue: plugin('fs', kind('eventfd', 6, () => false)) });
  fine.register(RESOURCE_PLUGIN, { useValue: plugin('acme', kind('acme-efd', 99, () => false)) });
  assert.deepEqual(new PluginRegistry(fine).all().map((p) => p.name), ['fs', 'acme']);
});

test('amber check runs the features a plugin declares, and a probe that throws is a missing feature', () => {
  const declaring: ResourcePlugin = {
    ...plugin('acme'),
    checks: () => [{ name: 'acme frobnicator', present: false, required: false, why: 'frobnicating' }],
  };
  const throwing: ResourcePlugin = { ...plugin('broken'), checks: () => { throw new Error('no /dev/frob'); } };
  const features = checkFeatures([declaring, throwing]);
  assert.ok(features.some((f) => f.name === 'kcmp' && f.plugin === undefined), 'the core\'s own features come first');
  assert.deepEqual(features.filter((f) => f.plugin).map((f) => [f.plugin, f.name, f.present, f.required]), [
    ['acme', 'acme frobnicator', false, false],
    ['broken', "broken's checks", false, true],
  ]);
});

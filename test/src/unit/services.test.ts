import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IMAGE_STORE, LOGGER, PluginRegistry, RESOURCE_PLUGIN, ServiceUnavailableError, TASK_FDS, injectServices, silentLogger,
  type ImageStore, type Logger, type ResourcePlugin,
} from '@amber/core';
import { container } from 'tsyringe'; // after @amber/core, which loads reflect-metadata

class Recorder implements ResourcePlugin {
  readonly name = 'recorder';
  readonly phase = 'resources' as const;
  constructor(readonly store: ImageStore, readonly log: Logger) {}
}
injectServices(Recorder, [IMAGE_STORE, LOGGER]);

function registry(): PluginRegistry {
  const c = container.createChildContainer();
  c.register(RESOURCE_PLUGIN, { useClass: Recorder });
  return new PluginRegistry(c);
}

test('a plugin gets the services of each run from the container, as a new instance per run', () => {
  const reg = registry();
  const [catalog] = reg.all();
  const storeA = { dir: '/a' } as unknown as ImageStore;
  const storeB = { dir: '/b' } as unknown as ImageStore;
  const [a] = reg.forRun(reg.all(), { [IMAGE_STORE]: storeA, [LOGGER]: silentLogger }, 'in a test run') as Recorder[];
  const [b] = reg.forRun(reg.all(), { [IMAGE_STORE]: storeB, [LOGGER]: silentLogger }, 'in a test run') as Recorder[];
  assert.equal(a.store, storeA);
  assert.equal(a.log, silentLogger);
  assert.equal(b.store, storeB);
  assert.notEqual(a, b, 'no plugin instance outlives its run');
  assert.notEqual(a, catalog);
});

test('a service used outside a run, or one the run lacks, is one clear error naming it', () => {
  const reg = registry();
  const [catalog] = reg.all() as Recorder[];
  assert.throws(() => catalog.store.dir, (e: Error) => e instanceof ServiceUnavailableError && /amber\.ImageStore is not available outside a dump, restore or compare/.test(e.message));
  const [inDump] = reg.forRun(reg.all(), { [LOGGER]: silentLogger }, 'in a dump') as Recorder[];
  assert.throws(() => inDump.store.dir, /amber\.ImageStore is not available in a dump/);
  assert.equal(inDump.log, silentLogger);
  assert.ok(TASK_FDS.description === 'amber.TaskFds');
});

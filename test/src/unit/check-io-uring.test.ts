import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { amber, describeAmber } from '../harness';

interface Feature {
  name: string;
  present: boolean;
  required: boolean;
  detail?: string;
}

test('amber check says whether io_uring is detected before a freeze, having tried it on a ring of its own', () => {
  const r = amber(['check', '--json']);
  assert.equal(r.status, 0, describeAmber(['check', '--json'], r));
  const feature = (JSON.parse(r.stdout) as Feature[]).find((f) => f.name === 'io_uring detection');
  assert.ok(feature, `amber check lists io_uring detection:\n${r.stdout}`);
  assert.equal(feature.required, false);
  assert.equal(feature.present, true, feature.detail);
  // io_uring is enabled on this machine (0): the probe made a SQPOLL ring and saw its worker
  const disabled = '/proc/sys/kernel/io_uring_disabled';
  if (existsSync(disabled) && readFileSync(disabled, 'utf8').trim() === '0') {
    assert.match(feature.detail ?? '', /^a ring fd and its poller, thread \d+ with PF_IO_WORKER, seen in \/proc$/);
  }
  const table = amber(['check']);
  assert.match(table.stdout, /^io_uring detection\s+present\s+optional\s/m, table.stdout);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareIdentities, InodeKey, type IdentityHolder } from '@amber/core';

const holder = (pid: number, where: string, key: string, inode: string): IdentityHolder => ({ pid, where, key, inode });

test('holders of one dumped object must hold one inode, and different objects different ones', () => {
  const memfd = InodeKey.memfd(257);
  const shm = InodeKey.sharedAnon(258);
  const same = [holder(1, 'fd 3', memfd, '1:10'), holder(1, 'mapping 0x1000', memfd, '1:10'), holder(2, 'mapping 0x1000', memfd, '1:10'), holder(2, 'mapping 0x2000', shm, '1:11')];
  assert.deepEqual(compareIdentities(same), []);

  const split = compareIdentities([holder(1, 'fd 3', memfd, '1:10'), holder(2, 'mapping 0x1000', memfd, '1:12')]);
  assert.equal(split.length, 1);
  assert.equal(split[0].pid, 2);
  assert.match(split[0].what, /mapping 0x1000: identity of memfd:257/);

  const merged = compareIdentities([holder(1, 'mapping 0x1000', memfd, '1:10'), holder(1, 'mapping 0x2000', shm, '1:10')]);
  assert.equal(merged.length, 1, 'two objects on one inode');
  assert.match(merged[0].actual, /the inode of memfd:257/);
});

test('registry keys: a deleted file keys by the low 32 bits of st_dev, as ghost-file.img keeps it', () => {
  assert.equal(InodeKey.deletedFile(0x1_0000_fe00n, 42n), InodeKey.deletedFile(0xfe00, 42));
  assert.notEqual(InodeKey.memfd(5), InodeKey.sharedAnon(5));
});

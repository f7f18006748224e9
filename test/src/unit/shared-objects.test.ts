import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SharedObjects, type ObjectOrder, type SharedKind } from '@amber/core';

/**
 * A recorded kernel: which object each (pid, idx) reaches, by its (obfuscated) address, and kcmp's
 * answers from those addresses, counted.
 */
function recorded(objectOf: Map<string, number>, unorderedPairs = false): { order: ObjectOrder; calls: () => number } {
  let calls = 0;
  const order: ObjectOrder = (_kind, pid1, idx1, pid2, idx2) => {
    calls++;
    const [a, b] = [objectOf.get(`${pid1}:${idx1}`)!, objectOf.get(`${pid2}:${idx2}`)!];
    if (a === b) return 0;
    if (unorderedPairs) return 3;
    return a < b ? 1 : 2;
  };
  return { order, calls: () => calls };
}

/** Ids by first appearance, comparing every pair: what the ids must be. */
function reference(asks: [SharedKind, number, number][], objectOf: Map<string, number>): number[] {
  const ids = new Map<string, number>();
  return asks.map(([kind, pid, idx]) => {
    const key = `${kind}:${objectOf.get(`${pid}:${idx}`)}`;
    if (!ids.has(key)) ids.set(key, ids.size + 1);
    return ids.get(key)!;
  });
}

/** 200 tasks: mm, fd table, fs and sighand each shared by groups of 4 (a process and its threads, say). */
function tree(): { asks: [SharedKind, number, number][]; objectOf: Map<string, number> } {
  const objectOf = new Map<string, number>();
  const asks: [SharedKind, number, number][] = [];
  (['VM', 'FILES', 'FS', 'SIGHAND'] as SharedKind[]).forEach((kind, k) => {
    for (let pid = 1000; pid < 1200; pid++) {
      // the idx slot stands for the kind here: one recorded map for all four; addresses in no
      // particular order, as the kernel's obfuscation gives them
      objectOf.set(`${pid}:${k}`, ((((pid - 1000) >> 2) + 50 * k) * 7919) % 100003);
      asks.push([kind, pid, k]);
    }
  });
  return { asks, objectOf };
}

test('shared object ids: the same as comparing every pair, with O(n log n) kcmp calls', () => {
  const { asks, objectOf } = tree();
  const { order, calls } = recorded(objectOf);
  const objects = SharedObjects.ordered(order);
  assert.deepEqual(asks.map(([kind, pid, idx]) => objects.identify(kind, pid, idx).id), reference(asks, objectOf));
  // 800 asks over 50 objects per kind: a binary search takes at most 6 comparisons (pairwise: ~25 each)
  assert.ok(calls() <= asks.length * 6, `${calls()} kcmp calls for ${asks.length} asks`);
});

test('shared object ids: files with dups in one task and across tasks, and a repeated ask', () => {
  const objectOf = new Map<string, number>([
    ['1:0', 50], ['1:1', 50], ['1:2', 70], ['2:0', 50], ['2:5', 10], ['3:3', 70], ['3:4', 90], ['2:6', 10],
  ]);
  const asks: [SharedKind, number, number][] = [...objectOf.keys()].map((k) => ['FILE', Number(k.split(':')[0]), Number(k.split(':')[1])]);
  asks.push(['FILE', 1, 2]);
  const want = reference(asks, objectOf);
  for (const unordered of [false, true]) {
    const { order } = recorded(objectOf, unordered);
    const objects = SharedObjects.ordered(order);
    const got = asks.map(([kind, pid, idx]) => objects.identify(kind, pid, idx));
    assert.deepEqual(got.map((g) => g.id), want, unordered ? 'a kernel that cannot order' : 'ordered');
    assert.deepEqual(got.map((g) => g.isNew), [true, false, true, false, true, false, true, false, false]);
  }
});

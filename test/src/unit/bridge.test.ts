import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bridgePieces } from '@amber/plugin-mm/dist/bridge';

const P = 4096;
const piece = (page: number, pages: number, depth: number, filePage: number) => ({
  addr: BigInt(page * P), len: pages * P, path: `pages-${depth}.img`, offset: filePage * P, depth,
});

test('an older set is read in one piece over the pages a newer set overwrites', () => {
  // parent holds pages 0..9 in order; the newer set rewrote pages 3 and 7
  const pieces = [piece(0, 3, 1, 0), piece(3, 1, 0, 0), piece(4, 3, 1, 4), piece(7, 1, 0, 1), piece(8, 2, 1, 8)];
  const out = bridgePieces(pieces);
  assert.deepEqual(out.map((p) => [Number(p.addr) / P, p.len / P, p.depth]), [[0, 10, 1], [3, 1, 0], [7, 1, 0]]);
});

test('no bridge over a hole, over older pages, or where the file does not hold the gap in place', () => {
  // a hole at page 3 (no piece at all)
  assert.equal(bridgePieces([piece(0, 3, 1, 0), piece(4, 2, 1, 4)]).length, 1 + 1);
  // the gap comes from an even older set: it must not be overwritten with stale data
  const older = bridgePieces([piece(0, 2, 1, 0), piece(2, 1, 2, 0), piece(3, 2, 1, 3)]);
  assert.equal(older.filter((p) => p.depth === 1).length, 2);
  assert.equal(older[0].depth, 2, 'the oldest set is written first');
  // the parent's file skips the gap (offsets not in step with addresses)
  assert.equal(bridgePieces([piece(0, 2, 1, 0), piece(2, 1, 0, 0), piece(3, 2, 1, 2)]).filter((p) => p.depth === 1).length, 2);
});

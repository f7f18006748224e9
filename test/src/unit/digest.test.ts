import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { Sha256, sha256, sha256Source } from '@amber/core';

test('sha256 is node\'s own OpenSSL here, and agrees with node:crypto on every length around a block', () => {
  // the fast path must really be taken on this machine: a silent fallback would cost every command ~12 ms
  assert.equal(sha256Source(), 'node-openssl');
  const data = Buffer.alloc(3 * 4096 + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  for (const n of [0, 1, 55, 56, 63, 64, 65, 127, 4096, data.length]) {
    const part = data.subarray(5, 5 + Math.min(n, data.length - 5));
    assert.equal(sha256(part).toString('hex'), createHash('sha256').update(part).digest('hex'), `${part.length} bytes at an offset of a view`);
  }
  assert.equal(sha256(Buffer.from('abc')).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('Sha256 fed in pieces gives the digest of the pieces joined, as node:crypto does', () => {
  const pieces = [0, 1, 63, 64, 65, 4096, 7].map((n, k) => Buffer.alloc(n, k + 1));
  const h = new Sha256();
  for (const p of pieces) h.update(p);
  assert.equal(h.digest().toString('hex'), createHash('sha256').update(Buffer.concat(pieces)).digest('hex'));
  assert.equal(new Sha256().digest().toString('hex'), createHash('sha256').digest('hex'));
});

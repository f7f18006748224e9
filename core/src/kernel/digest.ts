import koffi from 'koffi';

type OneShot = (data: Buffer, len: number, md: Buffer) => unknown;

/**
 * SHA-256 of the images, from the OpenSSL node itself carries: its binary exports libcrypto's
 * symbols (or has the shared libcrypto loaded), so dlopen(NULL) finds SHA256() without loading
 * anything. node:crypto would do the same work, but loading it costs ~12 ms a command (16 more of
 * node's modules, compiled from source: amber's V8 flags make V8 refuse node's embedded code
 * cache). A node without the symbol falls back to node:crypto.
 */
let oneShot: OneShot | null | undefined;

function ownSha256(): OneShot | null {
  if (oneShot !== undefined) return oneShot;
  try {
    oneShot = koffi.load(null).func('void *SHA256(const uint8_t *d, size_t n, _Out_ uint8_t *md)') as OneShot;
  } catch {
    oneShot = null;
  }
  return oneShot;
}

/** The SHA-256 of `data`, 32 bytes. */
export function sha256(data: Buffer): Buffer {
  const own = ownSha256();
  if (!own) {
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    return createHash('sha256').update(data).digest();
  }
  const md = Buffer.alloc(32);
  own(data, data.length, md);
  return md;
}

/** Which implementation sha256() uses here: for the test that both agree. */
export function sha256Source(): 'node-openssl' | 'node:crypto' {
  return ownSha256() ? 'node-openssl' : 'node:crypto';
}

import koffi from 'koffi';

interface OwnSha256 {
  init: (ctx: Buffer) => number;
  update: (ctx: Buffer, data: Buffer, len: number) => number;
  final: (md: Buffer, ctx: Buffer) => number;
}

/** OpenSSL's SHA256_CTX is 112 bytes; room to spare. */
const CTX_SIZE = 128;

/**
 * SHA-256 of the images, from the OpenSSL node itself carries: its binary exports libcrypto's
 * symbols (or has the shared libcrypto loaded), so dlopen(NULL) finds SHA256_Init/Update/Final
 * without loading anything. node:crypto would do the same work, but loading it costs ~12 ms a
 * command (16 more of node's modules, compiled from source: amber's V8 flags make V8 refuse
 * node's embedded code cache). A node without the symbols falls back to node:crypto.
 */
let own: OwnSha256 | null | undefined;

function ownSha256(): OwnSha256 | null {
  if (own !== undefined) return own;
  try {
    const self = koffi.load(null);
    own = {
      init: self.func('int SHA256_Init(void *ctx)') as OwnSha256['init'],
      update: self.func('int SHA256_Update(void *ctx, const uint8_t *data, size_t len)') as OwnSha256['update'],
      final: self.func('int SHA256_Final(_Out_ uint8_t *md, void *ctx)') as OwnSha256['final'],
    };
  } catch {
    own = null;
  }
  return own;
}

/** A SHA-256 fed piece by piece. */
export class Sha256 {
  private readonly ctx?: Buffer;
  private readonly fallback?: ReturnType<typeof import('node:crypto').createHash>;

  constructor() {
    const o = ownSha256();
    if (o) {
      this.ctx = Buffer.alloc(CTX_SIZE);
      o.init(this.ctx);
    } else {
      const { createHash } = require('node:crypto') as typeof import('node:crypto');
      this.fallback = createHash('sha256');
    }
  }

  update(data: Buffer): this {
    if (this.ctx) own!.update(this.ctx, data, data.length);
    else this.fallback!.update(data);
    return this;
  }

  /** The 32 bytes; the hash is used up. */
  digest(): Buffer {
    if (!this.ctx) return this.fallback!.digest();
    const md = Buffer.alloc(32);
    own!.final(md, this.ctx);
    return md;
  }
}

/** The SHA-256 of `data`, 32 bytes. */
export function sha256(data: Buffer): Buffer {
  return new Sha256().update(data).digest();
}

/** Which implementation sha256() uses here: for the test that both agree. */
export function sha256Source(): 'node-openssl' | 'node:crypto' {
  return ownSha256() ? 'node-openssl' : 'node:crypto';
}

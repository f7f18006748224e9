import type { PagePiece } from './parent';

/**
 * For a restore through a parent chain, where memory comes in many small pieces: widens a piece
 * of an older image set over the gap to the next piece of the same pages file when that file
 * holds the gap's pages in place and every page of the gap comes from a newer set. The wide piece
 * is one large read; the newer pieces are written after it and overwrite the gap. Returns the
 * pieces oldest set first, in the order they must be written.
 */
export function bridgePieces(pieces: PagePiece[]): PagePiece[] {
  const byAddr = [...pieces].sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  const index = new Map(byAddr.map((p, i) => [p, i]));
  const depths = [...new Set(pieces.map((p) => p.depth))].sort((a, b) => b - a);
  const out: PagePiece[] = [];
  for (const depth of depths) {
    let cur: PagePiece | undefined;
    for (const p of byAddr) {
      if (p.depth !== depth) continue;
      if (cur && p.path === cur.path && p.offset - cur.offset === Number(p.addr - cur.addr) && newerBetween(byAddr, index.get(p)!, cur, depth)) {
        cur.len = Number(p.addr - cur.addr) + p.len;
        continue;
      }
      if (cur) out.push(cur);
      cur = { ...p };
    }
    if (cur) out.push(cur);
  }
  return out;
}

/** Whether the pieces between cur's end and byAddr[at] tile that gap and all come from newer sets. */
function newerBetween(byAddr: PagePiece[], at: number, cur: PagePiece, depth: number): boolean {
  let expect = byAddr[at].addr;
  for (let i = at - 1; i >= 0 && byAddr[i].addr >= cur.addr + BigInt(cur.len); i--) {
    const q = byAddr[i];
    if (q.depth >= depth || q.addr + BigInt(q.len) !== expect) return false;
    expect = q.addr;
  }
  return expect === cur.addr + BigInt(cur.len);
}

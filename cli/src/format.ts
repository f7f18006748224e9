/** Small formatting helpers shared by the commands' human output. */

export function hex(n: bigint | number): string {
  return `0x${n.toString(16)}`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** Counter values: sizes read best in binary units, everything else as plain numbers. */
export function counterText(name: string, value: number): string {
  return /bytes$/i.test(name) ? bytes(value) : String(value);
}

export function counterLine(counters: Record<string, number>): string {
  return Object.keys(counters)
    .sort()
    .map((k) => `${k} ${counterText(k, counters[k])}`)
    .join(', ');
}

/** Pads columns of a table to equal widths (the last column is left ragged). */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

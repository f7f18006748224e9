import { bytes, hex } from './format';

/** What @amber/core's decodeImageFile returns; repeated here so rendering needs no core. */
export interface DecodedImage {
  file: string;
  type: string;
  magic: number;
  head?: object;
  entries: object[];
  /** Per entry, the raw data that follows it (pipe contents, socket queues), if the type has any. */
  blobs?: (object | null)[];
  /** Size of a raw pages file. */
  rawBytes?: number;
  /** What the reader should know (fields no loaded schema declares, shown raw). */
  notes?: string[];
}

const INLINE_LIMIT = 100;
const PACKED_LIMIT = 40;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** core renders bytes fields as {length, base64} already. */
function isEncodedBytes(v: unknown): v is { length: number; base64: string } {
  if (!isPlainObject(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 2 && typeof v.length === 'number' && typeof v.base64 === 'string';
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === 'bigint') return hex(v);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (isEncodedBytes(v)) return `<${v.length} bytes>`;
  if (typeof v === 'string') return /^[\w./:@+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
  if (v === null || v === undefined || typeof v !== 'object') return String(v);
  return undefined;
}

/** One line for a value when it is short enough, else undefined. */
function inline(v: unknown): string | undefined {
  const s = scalarText(v);
  if (s !== undefined) return s;
  let text: string | undefined;
  if (Array.isArray(v)) {
    const parts = v.map(inline);
    if (parts.every((p): p is string => p !== undefined)) text = `[${parts.join(', ')}]`;
  } else if (isPlainObject(v)) {
    const parts = Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => {
        const t = inline(x);
        return t === undefined ? undefined : `${k}: ${t}`;
      });
    if (parts.every((p): p is string => p !== undefined)) text = `{${parts.join(', ')}}`;
  }
  return text !== undefined && text.length <= INLINE_LIMIT ? text : undefined;
}

/** Indented `key: value` lines; nested values go inline while they stay short. */
export function renderValue(v: unknown, indent = ''): string[] {
  const one = inline(v);
  if (one !== undefined) return [`${indent}${one}`];
  const lines: string[] = [];
  if (Array.isArray(v)) return renderArray(v, indent);
  const fields = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  // Register sets and the like: runs of short scalars read best packed several to a line.
  let run: string[] = [];
  const flush = (): void => {
    lines.push(...(run.length > 3 ? pack(run, indent) : run.map((p) => indent + p)));
    run = [];
  };
  for (const [k, x] of fields) {
    const sub = inline(x);
    const packable = scalarText(x) !== undefined || (Array.isArray(x) && x.length === 0);
    if (packable && `${k}: ${sub}`.length <= PACKED_LIMIT) {
      run.push(`${k}: ${sub}`);
      continue;
    }
    flush();
    if (sub !== undefined) lines.push(`${indent}${k}: ${sub}`);
    else lines.push(`${indent}${k}:`, ...renderValue(x, `${indent}  `));
  }
  flush();
  return lines;
}

function renderArray(v: unknown[], indent: string): string[] {
  const items = v.map(inline);
  if (items.every((t): t is string => t !== undefined && t.length <= PACKED_LIMIT) && new Set(items).size > 1) {
    // A long list of numbers (xmm registers, bitmaps): wrapped, each line saying where it starts.
    const lines: string[] = [];
    let line: string[] = [];
    let start = 0;
    const prefix = (i: number): string => `${indent}[${i}] `;
    items.forEach((t, i) => {
      if (line.length && `${prefix(start)}${[...line, t].join(', ')}`.length > INLINE_LIMIT) {
        lines.push(`${prefix(start)}${line.join(', ')}`);
        line = [];
        start = i;
      }
      line.push(t);
    });
    if (line.length) lines.push(`${prefix(start)}${line.join(', ')}`);
    return lines;
  }
  const lines: string[] = [];
  for (let i = 0; i < v.length; i++) {
    const sub = items[i];
    if (sub === undefined) {
      lines.push(`${indent}[${i}]`, ...renderValue(v[i], `${indent}  `));
      continue;
    }
    // 64 default sigactions say one thing, not 64.
    let last = i;
    while (last + 1 < v.length && items[last + 1] === sub) last++;
    lines.push(`${indent}[${last > i ? `${i}..${last}` : i}] ${sub}`);
    i = last;
  }
  return lines;
}

function pack(parts: string[], indent: string): string[] {
  const width = Math.max(...parts.map((p) => p.length)) + 2;
  const perLine = Math.max(1, Math.floor((INLINE_LIMIT - indent.length) / width));
  const lines: string[] = [];
  for (let i = 0; i < parts.length; i += perLine) {
    lines.push(indent + parts.slice(i, i + perLine).map((p) => p.padEnd(width)).join('').trimEnd());
  }
  return lines;
}

export function renderImage(img: DecodedImage, name: string): string[] {
  if (img.rawBytes !== undefined) return [`${name}: raw pages, ${bytes(img.rawBytes)} (${img.rawBytes / 4096} pages)`];
  const lines = [`${name}: ${img.type} (magic ${hex(img.magic)}), ${img.entries.length} ${img.entries.length === 1 ? 'entry' : 'entries'}`];
  for (const note of img.notes ?? []) lines.push(`  note: ${note}`);
  if (img.head !== undefined) lines.push('  head', ...renderValue(img.head, '    '));
  img.entries.forEach((e, i) => {
    const one = inline(e);
    if (one !== undefined) lines.push(`  #${i} ${one}`);
    else lines.push(`  #${i}`, ...renderValue(e, '    '));
    const blob = img.blobs?.[i];
    if (blob) lines.push(`    + data ${scalarText(blob) ?? inline(blob) ?? ''}`);
  });
  return lines;
}

/** JSON.stringify replacer: bigints as decimal strings, binary data as base64. */
export function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  // Buffer.prototype.toJSON has already run by the time the replacer sees it.
  const holder = this as Record<string, unknown> | undefined;
  const raw = holder ? holder[key] : value;
  if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) return Buffer.from(raw).toString('base64');
  return value;
}

export function toJson(v: unknown): string {
  return JSON.stringify(v, jsonReplacer, 2);
}

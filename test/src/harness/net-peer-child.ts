/**
 * A TCP peer run inside a test host (`ip netns exec B node net-peer-child.js MODE ADDR PORT`):
 * the far end of a connection to a target, keeping its own clock, since the test process blocks
 * in amber while the target is dumped. Reports JSON lines on stdout; takes JSON lines on stdin.
 *
 * Modes: `stream` (sends what it is told, counts what arrives), `redis` (INCR in a loop on one
 * connection, each after the previous reply), `http` (keep-alive GETs in a loop on one connection).
 * Every mode reports the longest gap between two answers, and any error, reset or end.
 */
import * as net from 'node:net';
import * as readline from 'node:readline';

const [mode, host, portText] = process.argv.slice(2);
const emit = (ev: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ t: Date.now(), ...ev })}\n`);

let received = 0;
let answers = 0;
let lastAnswer = 0;
let maxGapMs = 0;
let closed: string | null = null;
let pending = Buffer.alloc(0);
let clientId: string | null = null;
let lastValue: string | null = null;
let stopped = false;
/** redis: the next request asks CLIENT ID instead of INCR; `expectId`: the reply awaited is an id. */
let wantId = true;
let expectId = false;

const sock = net.connect({ host, port: Number(portText) });
sock.setNoDelay(true);

function answered(): void {
  const now = Date.now();
  if (lastAnswer) maxGapMs = Math.max(maxGapMs, now - lastAnswer);
  lastAnswer = now;
  answers++;
}

function stats(): Record<string, unknown> {
  return { ev: 'stats', received, answers, maxGapMs, closed, clientId, lastValue, local: `${sock.localAddress}:${sock.localPort}` };
}

/** One RESP reply at the head of pending: its text and length, or null when incomplete. */
function respReply(buf: Buffer): { text: string; used: number } | null {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return null;
  const head = buf.subarray(0, eol).toString();
  if (head[0] === '$') {
    const n = Number(head.slice(1));
    if (n < 0) return { text: '(nil)', used: eol + 2 };
    if (buf.length < eol + 2 + n + 2) return null;
    return { text: buf.subarray(eol + 2, eol + 2 + n).toString(), used: eol + 2 + n + 2 };
  }
  return { text: head.slice(1), used: eol + 2 };
}

const resp = (...args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

function nextRequest(): void {
  if (stopped || closed) return;
  if (mode === 'redis') {
    expectId = wantId;
    wantId = false;
    sock.write(expectId ? resp('CLIENT', 'ID') : resp('INCR', 'amber-counter'));
  }
  if (mode === 'http') sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
}

function onRedis(): void {
  for (;;) {
    const r = respReply(pending);
    if (!r) return;
    pending = pending.subarray(r.used);
    if (expectId) {
      const first = clientId === null;
      clientId = r.text;
      emit({ ev: first ? 'connected' : 'clientid', clientId, local: `${sock.localAddress}:${sock.localPort}` });
    } else {
      lastValue = r.text;
      answered();
    }
    setTimeout(nextRequest, 5);
  }
}

/** One whole HTTP response (Content-Length framed) at the head of pending. */
function onHttp(): void {
  for (;;) {
    const end = pending.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = pending.subarray(0, end).toString();
    const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (pending.length < end + 4 + len) return;
    lastValue = head.split('\r\n')[0];
    pending = pending.subarray(end + 4 + len);
    answered();
    setTimeout(nextRequest, 5);
  }
}

sock.on('connect', () => {
  if (mode !== 'redis') emit({ ev: 'connected', local: `${sock.localAddress}:${sock.localPort}` });
  if (mode !== 'stream') nextRequest();
});
sock.on('data', (d: Buffer) => {
  received += d.length;
  if (mode === 'stream') return;
  pending = Buffer.concat([pending, d]);
  if (mode === 'redis') onRedis();
  else onHttp();
});
sock.on('error', (err: NodeJS.ErrnoException) => {
  closed = err.code ?? err.message;
  emit({ ev: 'error', code: closed });
});
sock.on('end', () => {
  closed ??= 'EOF';
  emit({ ev: 'end' });
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line) as { op: string; data?: string; bytes?: number };
  if (cmd.op === 'send' && cmd.data !== undefined) sock.write(Buffer.from(cmd.data, 'base64'), () => emit({ ev: 'sent' }));
  if (cmd.op === 'send' && cmd.bytes !== undefined) sock.write(Buffer.alloc(cmd.bytes, 0x61), () => emit({ ev: 'sent' }));
  if (cmd.op === 'clientid') wantId = true; // asked in band, between two INCRs
  if (cmd.op === 'stats') emit(stats());
  if (cmd.op === 'quit') {
    stopped = true;
    emit(stats());
    sock.destroy();
    process.exit(0);
  }
});

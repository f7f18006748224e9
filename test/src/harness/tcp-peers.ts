import { spawn, type ChildProcess } from 'node:child_process';
import type { Host } from './netns';

// The peers of the TCP tests (test/src/integration/tcp.test.ts), node scripts run inside a test host.

// The peer on host B: sends 5 KiB at once, reads nothing until told ("read" on stdin), then checks
// the target's 200 KiB and answers its PING. With a stream port, it also accepts a second
// connection and writes a byte stream on it without pause (byte i is the top byte of
// i * 2654435761, as tcp_conn checks it) until the target says STOP; then its FIN. Every event is
// a line on stdout, the stream's prefixed "stream".
const PEER = `
const net = require('node:net');
const [port, outBytes, inBytes, streamPort] = process.argv.slice(1).map(Number);
const say = (l) => process.stdout.write(l + '\\n');
const srv = net.createServer((s) => {
  srv.close();
  say('accepted');
  const five = Buffer.alloc(inBytes);
  for (let i = 0; i < inBytes; i++) five[i] = (i * 13 + 5) & 255;
  s.write(five);
  s.pause();
  const parts = [];
  let got = 0;
  s.on('data', (d) => {
    parts.push(d);
    got += d.length;
    if (got < outBytes + 5) return;
    const all = Buffer.concat(parts);
    let bad = -1;
    for (let i = 0; i < outBytes && bad < 0; i++) if (all[i] !== ((i * 31 + 7) & 255)) bad = i;
    say(bad < 0 ? 'verified ' + outBytes : 'corrupt at ' + bad);
    say(all.subarray(outBytes).toString() === 'PING\\n' ? 'ping' : 'no ping: ' + JSON.stringify(all.subarray(outBytes).toString()));
    s.write('PONG\\n');
    say('pong');
  });
  s.on('error', (e) => say('error ' + e.code));
  s.on('end', () => say('end'));
  process.stdin.on('data', (c) => { if (String(c).includes('read')) s.resume(); });
});
srv.listen(port, '::', () => say('listening'));
if (streamPort) {
  const st = net.createServer((s) => {
    st.close();
    say('stream accepted');
    let sent = 0;
    let stopped = false;
    // a little at a time, the socket never idle: node's own buffer stays small, the kernel's full
    const timer = setInterval(() => {
      if (s.writableLength >= 65536) return;
      const b = Buffer.alloc(4096);
      for (let k = 0; k < b.length; k++) b[k] = Math.imul(sent + k, 2654435761) >>> 24;
      sent += b.length;
      s.write(b);
    }, 5);
    let cmd = '';
    s.on('data', (d) => {
      cmd += d;
      if (stopped || !cmd.includes('STOP\\n')) return;
      stopped = true;
      clearInterval(timer);
      say('stream stop');
      s.end(() => say('stream sent ' + sent));
    });
    s.on('error', (e) => { clearInterval(timer); say('stream error ' + e.code); });
    s.on('end', () => say('stream end'));
  });
  st.listen(streamPort, '::', () => say('stream listening'));
}
`;

export interface StreamPeer {
  child: ChildProcess;
  lines: string[];
  waitFor(line: string | RegExp, ms?: number): Promise<void>;
}

/** A node script run inside host (nsenter --net) whose stdout lines the test waits for. */
function startScriptPeer(host: Host, script: string, args: (string | number)[]): StreamPeer {
  const child = spawn('nsenter', [`--net=${host.nsPath}`, process.execPath, '-e', script, ...args.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const waitFor = async (line: string | RegExp, ms = 30_000) => {
    const ok = () => lines.some((l) => (typeof line === 'string' ? l === line : line.test(l)));
    for (const deadline = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > deadline) throw new Error(`peer did not say ${line} within ${ms} ms: ${lines.join(' | ')}`);
    }
  };
  return { child, lines, waitFor };
}

export function startStreamPeer(host: Host, port: number, outBytes: number, inBytes: number, streamPort = 0): StreamPeer {
  return startScriptPeer(host, PEER, [port, outBytes, inBytes, streamPort]);
}

/** The FIN peer (below) listening on port inside host. */
export function startFinPeer(host: Host, port: number): StreamPeer {
  return startScriptPeer(host, FIN_PEER, [port]);
}

// A peer that says "go" when told, reports what came before the FIN, and answers "ok" and its own FIN when told.
const FIN_PEER = `
const net = require('node:net');
const say = (l) => process.stdout.write(l + '\\n');
const srv = net.createServer({ allowHalfOpen: true }, (s) => {
  srv.close();
  let got = '';
  s.on('data', (d) => { got += d; });
  s.on('end', () => say('got ' + JSON.stringify(got) + ' then end'));
  s.on('error', (e) => say('error ' + e.code));
  say('accepted');
  process.stdin.on('data', (c) => { if (String(c).includes('go')) s.write('go\\n'); if (String(c).includes('answer')) s.end('ok'); });
});
srv.listen(Number(process.argv[1]), () => say('listening'));
`;


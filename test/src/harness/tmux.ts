import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kill, SIG } from '@amber/core';
import { descendants } from './checks';
import { isAlive, parentOf, procState, reap, sleep } from './reap';
import { becomeSubreaper } from './targets';
import { makeTmpDir } from './tmp';

/** A shell for panes that reads no rc file and keeps no history: what a test types is all it does. */
export const PANE_SHELL = 'env HISTFILE=/dev/null PS1="$ " bash --norc --noprofile';

export interface TmuxOptions {
  /** Window size of every window of the server (default 100x30). */
  width?: number;
  height?: number;
  /** Command of the first window's pane (default PANE_SHELL). */
  command?: string;
}

const servers = new Set<TmuxServer>();

/**
 * A tmux server of a test's own: its socket in a fresh temp dir (`tmux -S`), no config file, one
 * session `main` made detached with a fixed size. Nothing here reaches another tmux server; the
 * server and what runs in its panes are the test's, and stop() (or stopTmuxServers(), in an
 * after hook) ends them even when the test failed.
 */
export class TmuxServer {
  private constructor(
    readonly dir: string,
    readonly socket: string,
    /** The server's pid, as the server itself said it when it started. */
    readonly pid: number,
  ) {}

  static start(label: string, opts: TmuxOptions = {}): TmuxServer {
    // tmux daemonizes: as the test's subreaper we become the server's parent, so we can reap it
    becomeSubreaper();
    const dir = makeTmpDir(`tmux-${label}`);
    const socket = path.join(dir, 'sock');
    const [w, h] = [opts.width ?? 100, opts.height ?? 30];
    const r = run(socket, ['new-session', '-d', '-s', 'main', '-x', String(w), '-y', String(h), opts.command ?? PANE_SHELL]);
    if (r.status !== 0) throw new Error(`tmux new-session failed: ${r.stderr}`);
    const pid = Number(run(socket, ['display-message', '-p', '#{pid}']).stdout.trim());
    if (!pid) throw new Error(`tmux server on ${socket} did not say its pid`);
    const server = new TmuxServer(dir, socket, pid);
    servers.add(server);
    server.tmux(['set-option', '-g', 'status', 'off']);
    server.tmux(['set-option', '-g', 'history-limit', '5000']);
    return server;
  }

  /** Runs a tmux command against this server; throws unless it succeeds. */
  tmux(args: string[]): string {
    const r = run(this.socket, args);
    if (r.status !== 0) throw new Error(`tmux -S ${this.socket} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Like tmux(), returning the result instead of throwing. */
  tryTmux(args: string[]): { status: number | null; stdout: string; stderr: string } {
    return run(this.socket, args);
  }

  /** The first pane of the first window. */
  get firstPane(): string {
    return this.tmux(['display-message', '-p', '-t', 'main:0.0', '#{pane_id}']).trim();
  }

  /** A new window of session main; returns its pane's id (%N). */
  newWindow(name: string, command = PANE_SHELL): string {
    return this.tmux(['new-window', '-d', '-t', 'main', '-n', name, '-P', '-F', '#{pane_id}', command]).trim();
  }

  /** Keys by tmux name (`Enter`, `C-c`, `Escape`, `C-l`). */
  sendKeys(pane: string, ...keys: string[]): void {
    this.tmux(['send-keys', '-t', pane, ...keys]);
  }

  /** Text typed as it is (send-keys -l), optionally followed by Enter. */
  type(pane: string, text: string, enter = true): void {
    this.tmux(['send-keys', '-t', pane, '-l', text]);
    if (enter) this.sendKeys(pane, 'Enter');
  }

  /** What the pane shows now (capture-pane -p, wrapped lines joined). */
  capture(pane: string): string {
    return this.tmux(['capture-pane', '-p', '-J', '-t', pane]);
  }

  panePid(pane: string): number {
    return Number(this.tmux(['display-message', '-p', '-t', pane, '#{pane_pid}']).trim());
  }

  paneTty(pane: string): string {
    return this.tmux(['display-message', '-p', '-t', pane, '#{pane_tty}']).trim();
  }

  /** Waits until the pane shows text matching pattern; returns the capture. */
  async waitForText(pane: string, pattern: RegExp | string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const shown = this.capture(pane);
      if (typeof pattern === 'string' ? shown.includes(pattern) : pattern.test(shown)) return shown;
      if (Date.now() > deadline) throw new Error(`pane ${pane} of ${this.socket} did not show ${pattern} within ${timeoutMs} ms; it shows:\n${shown}`);
      await sleep(50);
    }
  }

  /**
   * From now on, every byte the pane's programs write is also appended to a file (pipe-pane):
   * text a full-screen program draws over (vim redrawing after a resize) is still there.
   * Returns a function that waits until that output holds `text`.
   */
  recordOutput(pane: string): (text: string, timeoutMs?: number) => Promise<void> {
    const file = path.join(this.dir, `pane-${pane.replace(/\W/g, '')}.out`);
    fs.writeFileSync(file, '');
    this.tmux(['pipe-pane', '-o', '-t', pane, `cat >> ${file}`]);
    return async (text, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!fs.readFileSync(file, 'utf8').includes(text)) {
        if (Date.now() > deadline) throw new Error(`pane ${pane} of ${this.socket} wrote no ${JSON.stringify(text)} within ${timeoutMs} ms`);
        await sleep(50);
      }
    };
  }

  /**
   * Ends the server (kill-server by its socket; SIGHUP reaches its panes), then every process
   * that was under it: a straggler that is still our child after 5 s is SIGKILLed, and all are
   * reaped. Pids are checked to be ours (our children) before any signal.
   */
  async stop(): Promise<void> {
    servers.delete(this);
    const under = this.alive() ? descendants(this.pid) : [];
    run(this.socket, ['kill-server']);
    const deadline = Date.now() + 5_000;
    for (const pid of under) {
      while (isAlive(pid) && Date.now() < deadline) await sleep(20);
      if (isAlive(pid) && parentOf(pid) === process.pid) kill(pid, SIG.KILL);
    }
    for (const pid of under) if (procState(pid) !== null && parentOf(pid) === process.pid) await reap(pid, 5_000).catch(() => undefined);
  }

  /** The server still runs under its pid (and it is still the process we started: our child). */
  alive(): boolean {
    return isAlive(this.pid) && parentOf(this.pid) === process.pid;
  }
}

// Only stdin/out/err reach tmux: the server it starts would keep any other fd the test runner
// inherited (a pipe of whoever started it), and a dump of the server would find a pipe to outside.
const CLOSE_INHERITED = 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; exec tmux "$@"';

function run(socket: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color' };
  delete env.TMUX;
  delete env.TMUX_PANE;
  const argv = ['-c', CLOSE_INHERITED, 'bash', '-S', socket, '-f', '/dev/null', ...args];
  const r = spawnSync('bash', argv, { encoding: 'utf8', env, timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
}

/** Stops every tmux server a test started and has not stopped (for an after hook). */
export async function stopTmuxServers(): Promise<void> {
  for (const s of [...servers]) await s.stop();
}

/** Waits until a file's text matches pattern; returns the match. */
export async function waitForFile(file: string, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = fs.existsSync(file) ? pattern.exec(fs.readFileSync(file, 'utf8')) : null;
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`${file} did not match ${pattern} within ${timeoutMs} ms:\n${fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '(missing)'}`);
    await sleep(20);
  }
}

/**
 * Holds n pty pairs of this machine (devpts hands out the lowest free index). A pty is restored
 * at its dumped index, which any program on the machine may take between a dump and its restore,
 * and the next one opened gets the lowest free index: holding n ptys while a test's terminals are
 * made, and freeing them once those are dumped, leaves n lower indexes for whoever opens a pty
 * meanwhile, so the dumped ones stay free.
 */
export function holdPtys(n: number): { release(): void } {
  const fds: number[] = [];
  for (let i = 0; i < n; i++) fds.push(fs.openSync('/dev/ptmx', fs.constants.O_RDWR | fs.constants.O_NOCTTY));
  return {
    release() {
      for (const fd of fds.splice(0)) fs.closeSync(fd);
    },
  };
}

/** Children of pid now (/proc/PID/task/PID/children). */
export function childrenOf(pid: number): number[] {
  const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text ? text.split(/\s+/).map(Number) : [];
}

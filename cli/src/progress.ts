/** A single self-overwriting status line on a terminal; does nothing when the stream is not a TTY. */
export class ProgressLine {
  private shown = false;
  private lastDraw = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  update(done: number, total: number, what: string): void {
    if (!this.enabled) return;
    const now = Date.now();
    // Redrawing on every batch would cost more than the work it reports.
    if (done < total && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.stream.write(`\r\u001b[K${progressText(done, total, what)}`);
    this.shown = true;
  }

  /** Removes the line, e.g. before a log line or the final summary. */
  clear(): void {
    if (!this.shown) return;
    this.stream.write('\r\u001b[K');
    this.shown = false;
  }
}

export function progressText(done: number, total: number, what: string): string {
  if (what === 'bytes') {
    const mib = (n: number) => (n / 2 ** 20).toFixed(0);
    return progressText(Number(mib(done)), Number(mib(total)), 'memory MiB');
  }
  if (total <= 0) return `${what}: ${done}`;
  const pct = Math.min(100, Math.floor((done / total) * 100));
  const width = 24;
  const filled = Math.round((pct / 100) * width);
  return `${what} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} (${pct}%)`;
}

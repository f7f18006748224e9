export interface Logger {
  info(msg: string): void;
  debug(msg: string): void;
  warn(msg: string): void;
}

/**
 * Milliseconds since amber started, on a monotonic clock: for its phase times and the log's
 * stamps. Not the global `performance`, whose first use loads ~11 of node's modules (perf_hooks),
 * ~3 ms of a command.
 */
export function uptimeMs(): number {
  return process.uptime() * 1000;
}

export const silentLogger: Logger = { info() {}, debug() {}, warn() {} };

export function streamLogger(write: (line: string) => void, verbose: boolean): Logger {
  const stamp = () => process.uptime().toFixed(3).padStart(8);
  return {
    info: (m) => write(`${stamp()} ${m}`),
    debug: (m) => {
      if (verbose) write(`${stamp()} ${m}`);
    },
    warn: (m) => write(`${stamp()} warning: ${m}`),
  };
}

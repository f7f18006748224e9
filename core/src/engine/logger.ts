export interface Logger {
  info(msg: string): void;
  debug(msg: string): void;
  warn(msg: string): void;
}

export const silentLogger: Logger = { info() {}, debug() {}, warn() {} };

export function streamLogger(write: (line: string) => void, verbose: boolean): Logger {
  const stamp = () => (performance.now() / 1000).toFixed(3).padStart(8);
  return {
    info: (m) => write(`${stamp()} ${m}`),
    debug: (m) => {
      if (verbose) write(`${stamp()} ${m}`);
    },
    warn: (m) => write(`${stamp()} warning: ${m}`),
  };
}

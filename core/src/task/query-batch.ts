import { KernelError } from '../kernel/errors';
import type { RemoteSyscall, TableCall } from '../ptrace/remote-syscall';
import { callName } from '../ptrace/remote-calls';
import type { SyscallArg } from '../kernel/syscall-table';

/**
 * A thread's questions at dump (getters that change nothing), gathered so they all run in one
 * stop of the thread (RemoteSyscall.queryMany): each asker queues its calls and the room the
 * kernel fills, and reads its answers once the batch has run.
 */
export class QueryBatch {
  private readonly calls: TableCall[] = [];
  private room: { from: bigint; to: bigint } | undefined;
  private answers: { results: number[]; data: Buffer } | undefined;

  constructor(private readonly remote: RemoteSyscall) {
    remote.resetData();
  }

  /**
   * n bytes for the kernel to fill; read them with bytes() after run(). Not cleared first: every
   * getter here fills its room whenever it succeeds, and a failure throws.
   */
  slot(n: number): bigint {
    const at = this.remote.reserveUncleared(n);
    this.room = { from: this.room?.from ?? at, to: at + BigInt(n) };
    return at;
  }

  /** Queues a call; its rax is result(index) after run(). */
  add(call: TableCall): number {
    if (this.answers) throw new Error(`pid ${this.remote.pid}: a call queued after its batch ran`);
    return this.calls.push(call) - 1;
  }

  /** Runs every call; the first that failed throws its KernelError, as the call alone would. */
  run(): void {
    this.start()();
  }

  /**
   * run() in two halves (RemoteSyscall.beginQueryMany): the returned one must be called before
   * anything else is done to the thread. `status`: its /proc status, just read.
   */
  start(status?: string): () => void {
    const collect = this.remote.beginQueryMany(this.calls, status);
    return () => this.collect(collect());
  }

  private collect(results: number[]): void {
    const failed = results.findIndex((r) => r < 0 && r > -4096);
    if (failed >= 0) {
      const c = this.calls[failed];
      throw new KernelError(`${callName(c.name, c.args as readonly SyscallArg[])} (in the task)`, -results[failed], this.remote.pid, c.detail);
    }
    const data = this.room ? this.remote.memory.read(this.room.from, Number(this.room.to - this.room.from)) : Buffer.alloc(0);
    this.answers = { results, data };
  }

  result(index: number): number {
    return this.ran().results[index];
  }

  /** The bytes the kernel wrote at a slot. */
  bytes(at: bigint, n: number): Buffer {
    const off = Number(at - this.room!.from);
    return this.ran().data.subarray(off, off + n);
  }

  private ran(): { results: number[]; data: Buffer } {
    if (!this.answers) throw new Error(`pid ${this.remote.pid}: an answer read before its batch ran`);
    return this.answers;
  }
}

/**
 * State a plugin keeps for the length of one dump or restore (what it has written so far, images
 * it read once): on the run's context, so two runs in one process never see each other's.
 */
export class RunState {
  private readonly values = new Map<string, unknown>();

  get<T>(key: string, init: () => T): T {
    if (!this.values.has(key)) this.values.set(key, init());
    return this.values.get(key) as T;
  }
}

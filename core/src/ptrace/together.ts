/**
 * start(item) for every item, then each returned half: how amber overlaps the stops of tasks
 * that share no scratch area (different processes), so that their round trips do not add up.
 * A started item's second half must run before anything else is done to its task (it is
 * running until then), so every one started is finished, in order, before the first error,
 * from either half, goes on; after an error in a start no other is started.
 */
export function together<T, R>(items: readonly T[], start: (item: T) => () => R): R[] {
  const finishes: (() => R)[] = [];
  let failure: { error: unknown } | undefined;
  for (const item of items) {
    try {
      finishes.push(start(item));
    } catch (e) {
      failure = { error: e };
      break;
    }
  }
  const results: R[] = [];
  for (const finish of finishes) {
    try {
      results.push(finish());
    } catch (e) {
      failure ??= { error: e };
    }
  }
  if (failure) throw failure.error;
  return results;
}

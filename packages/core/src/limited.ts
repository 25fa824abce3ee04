/**
 * Bounded fan-out: a driver asking a daemon about many things at once keeps to a few requests in
 * flight (libvirtd serves five per client by default and stops reading from one that sends more).
 */

/** Runs `fn` over `items`, at most `limit` at a time, in order of start; each call handles its own errors. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}

/** `fn` over `items`, at most `limit` at a time; the results in the items' order. The first failure rejects. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  await forEachLimited(items, limit, async (item, index) => {
    out[index] = await fn(item, index);
  });
  return out;
}

/**
 * Polls `f` until it returns (or resolves to) something truthy, and returns that; fails naming `what` after
 * `timeoutMs`. An async `f` is awaited on every poll: its promise is not the answer.
 */
export async function until<T>(
  what: string,
  f: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
  pollMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => (pollMs > 0 ? setTimeout(r, pollMs) : setImmediate(r)));
  }
}

// Waiting for an observable condition, in tests. A wait that runs out THROWS, naming what was
// awaited and the last value seen, so a condition that never holds fails the test where it is
// awaited instead of letting the next line run on a state nobody checked.

const POLL_MS = 100;

/** A short, printable form of what a probe returned (or threw). */
export function describeValue(v: unknown, max = 600): string {
  let s: string;
  if (v instanceof Error) s = `${v.name}: ${v.message}`;
  else if (typeof v === 'string') s = JSON.stringify(v);
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = String(v);
    }
  }
  if (s.length <= max) return s;
  // The end of a long text (a log, a command's output) says most about where it stands now.
  return typeof v === 'string' ? `(${s.length} characters, the last ${max}) ...${s.slice(-max)}` : `${s.slice(0, max)}... (${s.length} characters)`;
}

/**
 * Polls `fn` until `ok` holds for its value and returns that value. When `ms` pass first, throws
 * `timed out after <ms> ms waiting for <what>; last value: <...>`. A probe that throws counts as
 * "not yet" (a server restarting, a port not listening yet); its error is the last value.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: { value: T } | { error: unknown } | undefined;
  for (;;) {
    try {
      const value = await fn();
      if (ok(value)) return value;
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, POLL_MS)); // poll interval of this wait, not a fixed sleep
  }
  const seen = last === undefined ? 'none' : 'error' in last ? `threw ${describeValue(last.error)}` : describeValue(last.value);
  throw new Error(`timed out after ${ms} ms waiting for ${what}; last value: ${seen}`);
}

/**
 * Resolves with `p`, or throws `<what> did not finish within <ms> ms` when it hangs: a deadline
 * that turns a hang into a clear failure, not a measurement (timings live in scripts/bench-*.mjs).
 */
export async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms); // deadline for a hang, not a fixed sleep
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

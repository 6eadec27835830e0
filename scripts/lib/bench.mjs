// Helpers the benchmark scripts share: awaiting a condition (it throws, naming what it awaited and
// the last value, when the condition never holds), medians and percentiles, a free loopback port.
import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy (returned), or throws after `ms`. */
export async function until(what, fn, ms = 30_000, everyMs = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}; last: ${JSON.stringify(last)?.slice(0, 400)}`);
    await sleep(everyMs);
  }
}

/** The median (null for none). */
export function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The 95th percentile, nearest rank. */
export function p95(xs) {
  return [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
}

/** A TCP port free on `host` right now (listen on 0, read it, close). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The optional token (--http-token-file) in front of the page and the API alike. A client proves it
// with `Authorization: Bearer <token>`, or with the session cookie a browser gets by posting the
// token to /login. The cookie holds an expiry and an HMAC of it keyed by the token, never the
// token, so no response ever carries the secret; it is named after the port (two daemons on one
// host keep their own); comparisons take constant time.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** How long a browser stays signed in. */
export const SESSION_SECONDS = 12 * 3600;

export interface TokenCheck {
  /** Does this request carry the token (header) or a live session derived from it (cookie)? */
  allows(req: IncomingMessage): boolean;
  /** Is `candidate` the token (a /login form)? */
  matches(candidate: string): boolean;
  /** The Set-Cookie value that lets a browser in until SESSION_SECONDS from now. */
  sessionCookie(): string;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const same = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** `cookieName`: read when needed (the port is known once the server listens). */
export function tokenCheck(token: string, cookieName: () => string, now: () => number = Date.now): TokenCheck {
  const sign = (expires: number): string => `${expires}.${createHmac('sha256', token).update(`topogit-session-v2 ${expires}`).digest('base64url')}`;
  return {
    allows(req) {
      const auth = req.headers.authorization ?? '';
      if (/^Bearer /i.test(auth) && same(auth.slice(7).trim(), token)) return true;
      const c = cookie(req, cookieName());
      if (c === undefined) return false;
      const expires = Number(c.slice(0, c.indexOf('.')));
      return Number.isSafeInteger(expires) && expires > now() / 1000 && same(c, sign(expires));
    },
    matches: (candidate) => same(candidate, token),
    sessionCookie: () => `${cookieName()}=${sign(Math.floor(now() / 1000) + SESSION_SECONDS)}; Max-Age=${SESSION_SECONDS}; HttpOnly; SameSite=Strict; Path=/`,
  };
}

export function sessionCookieName(port: number): string {
  return `topogit_session_${port}`;
}

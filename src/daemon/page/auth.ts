// The optional token (--http-token-file) in front of the page and the API alike. A client proves it
// with `Authorization: Bearer <token>`, or with the session cookie a browser gets by posting the
// token to /login. The cookie holds an HMAC of the token, never the token, so no response ever
// carries the secret; comparisons take constant time.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE = 'topogit_session';

export interface TokenCheck {
  /** Does this request carry the token (header) or the session derived from it (cookie)? */
  allows(req: IncomingMessage): boolean;
  /** Is `candidate` the token (a /login form)? */
  matches(candidate: string): boolean;
  /** The Set-Cookie value that lets a browser in. */
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

export function tokenCheck(token: string): TokenCheck {
  const session = createHmac('sha256', token).update('topogit-session-v1').digest('base64url');
  return {
    allows(req) {
      const auth = req.headers.authorization ?? '';
      if (/^Bearer /i.test(auth) && same(auth.slice(7).trim(), token)) return true;
      const c = cookie(req, SESSION_COOKIE);
      return c !== undefined && same(c, session);
    },
    matches: (candidate) => same(candidate, token),
    sessionCookie: () => `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
  };
}

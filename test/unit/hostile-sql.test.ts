// Hostile values can never change the SQL topogit runs: hosts, users and names reach the server
// only as quoted literals or are refused by the schema.
//
// Every Action kind is turned into statements for both flavors and several versions with hostile
// host, user and password values. The statement text never holds a value (values are bound as
// `?`), and what mysql2 sends (`mysql.format(sql, values)`) parses back into exactly the same
// statement with one properly escaped literal per value; the displayed form never holds the
// password. Then the schema refuses every hostile host, user and name before any of this runs.
import fc from 'fast-check';
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { displayAction, statementsFor } from '../../src/adapters/mysql/actions.js';
import { changeSource, displaySql, parseVersion, type ServerVersion, type Statement } from '../../src/adapters/mysql/dialect.js';
import { userStatements } from '../../src/adapters/sandbox/local.js';
import { formatIssue, parseTopologyText } from '../../src/config/load.js';
import type { Action } from '../../src/core/plan.js';
import { DEFAULT_REPLICATION } from '../../src/core/plan.js';

// ---------------------------------------------------------------------------------------------
// Hostile values

const HOSTILE: readonly string[] = [
  "'",
  '"',
  '`',
  '\\',
  "\\'",
  "\\\\'",
  "''",
  "'; DROP TABLE x; --",
  "x'; DROP TABLE mysql.user; -- ",
  "127.0.0.1', MASTER_PORT=1, MASTER_HOST='evil",
  "repl'@'%' IDENTIFIED BY 'x",
  '`; SHUTDOWN; `',
  '"; DROP DATABASE mysql; #',
  'db\nSTART SLAVE',
  'db\r\nRESET MASTER',
  'nul\u0000byte',
  '\u0000',
  'ctrl-z\u001a',
  'back\bspace\ttab',
  '/*! DROP TABLE x */',
  '-- comment',
  '# comment',
  '?',
  '??',
  '%s',
  '$1',
  'unicode \u2019quote\u2018',
  'fullwidth \uff07 quote',
  'double \u201cquote\u201d',
  'modifier \u02bc apostrophe',
  'yen \u00a5 and won \u20a9 (backslash in some charsets)',
  '\u00bf\u0027 gbk-style',
  'emoji 😀 ;',
  'line\u2028separator',
  ' leading and trailing ',
  'x'.repeat(4096),
];

/** A password that is recognisable in any output; every hostile value becomes one. */
const password = (h: string): string => `PW<${h}>pw`;

/** What mysql2's client-side formatting takes as values. */
type FormatValues = Parameters<typeof mysql.format>[1];

// ---------------------------------------------------------------------------------------------
// Reading back what mysql2 sends, in MySQL's default SQL mode (backslash escapes on)

type Token = { kind: 'text'; text: string } | { kind: 'literal'; value: string };

const UNESCAPE: Record<string, string> = { '0': '\u0000', b: '\b', t: '\t', n: '\n', r: '\r', Z: '\u001a' };

/**
 * Splits SQL into text and single-quoted literals, decoding the literals the way the server does.
 * Throws on anything a statement topogit builds must not hold outside a literal: another quote
 * character, a backslash, a comment, a second statement, or an unterminated literal.
 */
function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let text = '';
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i] as string;
    if (c === "'") {
      if (text) tokens.push({ kind: 'text', text });
      text = '';
      let value = '';
      for (i += 1; ; i++) {
        if (i >= sql.length) throw new Error(`unterminated literal in ${JSON.stringify(sql)}`);
        const d = sql[i] as string;
        if (d === '\\') {
          i += 1;
          if (i >= sql.length) throw new Error('backslash at the end');
          const e = sql[i] as string;
          value += UNESCAPE[e] ?? e;
        } else if (d === "'") {
          if (sql[i + 1] === "'") {
            value += "'";
            i += 1;
          } else break;
        } else value += d;
      }
      tokens.push({ kind: 'literal', value });
      continue;
    }
    if (c === '"' || c === '`' || c === '\\') throw new Error(`${JSON.stringify(c)} outside a literal in ${JSON.stringify(sql)}`);
    if (c === ';' || c === '#' || sql.startsWith('--', i) || sql.startsWith('/*', i)) {
      throw new Error(`statement separator or comment outside a literal in ${JSON.stringify(sql)}`);
    }
    text += c;
  }
  if (text) tokens.push({ kind: 'text', text });
  return tokens;
}

/** What `sql` with its `?` bound to `values` must read as: strings as literals, numbers as text. */
function expectedTokens(sql: string, values: readonly unknown[]): Token[] {
  const out: Token[] = [];
  const pushText = (t: string): void => {
    const last = out[out.length - 1];
    if (last?.kind === 'text') last.text += t;
    else if (t) out.push({ kind: 'text', text: t });
  };
  let n = 0;
  for (const tok of tokenize(sql)) {
    if (tok.kind === 'literal') {
      out.push(tok);
      continue;
    }
    const parts = tok.text.split('?');
    parts.forEach((part, k) => {
      pushText(part);
      if (k === parts.length - 1) return;
      const v = values[n++];
      if (typeof v === 'string') out.push({ kind: 'literal', value: v });
      else if (typeof v === 'number' && Number.isFinite(v)) pushText(String(v));
      else throw new Error(`unexpected bound value ${String(v)}`);
    });
  }
  expect(n, 'one value per placeholder').toBe(values.length);
  return out;
}

/** The statement as mysql2 sends it reads back as itself with one literal per string value. */
function checkBound(s: Statement, hostile: readonly string[]): void {
  // ('?' alone is the placeholder itself: the token check below covers it.)
  for (const h of hostile) if (!/^\?+$/.test(h)) expect(s.sql, 'a value is in the statement text').not.toContain(h);
  expect((s.sql.match(/\?/g) ?? []).length, 'one placeholder per value').toBe(s.values.length);
  // A value never inserts SQL: only fixed text and `?` are in the statement itself.
  expect(s.sql).toMatch(/^[A-Za-z0-9_ =,.?*@'%]+$/);
  const sent = mysql.format(s.sql, s.values as FormatValues);
  const tokens = tokenize(sent);
  expect(tokens).toEqual(expectedTokens(s.sql, s.values));
  // Every literal that holds a hostile value is that value, whole, once per binding.
  const literals = tokens.filter((t): t is Extract<Token, { kind: 'literal' }> => t.kind === 'literal').map((t) => t.value);
  const bound = s.values.filter((v): v is string => typeof v === 'string');
  for (const v of bound) expect(literals.filter((l) => l === v).length).toBe(bound.filter((b) => b === v).length);
  // The quotes that delimit literals are all the unescaped quotes there are.
  expect(unescapedQuotes(sent)).toBe(2 * literals.length);
}

/** Single quotes not preceded by an odd run of backslashes and not doubled inside a literal. */
function unescapedQuotes(sql: string): number {
  let count = 0;
  let inside = false;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (inside && c === '\\') {
      i += 1;
      continue;
    }
    if (c !== "'") continue;
    if (inside && sql[i + 1] === "'") {
      i += 1;
      continue;
    }
    inside = !inside;
    count += 1;
  }
  return count;
}

/** The displayed statement is the sent one with the secrets as '****', and holds no password. */
function checkDisplayed(s: Statement, secret: string): void {
  const shown = displaySql(s);
  expect(shown).not.toContain(secret);
  const masked = s.values.map((v, i) => (s.secret.includes(i) ? '****' : v));
  expect(tokenize(shown)).toEqual(expectedTokens(s.sql, masked));
  for (const i of s.secret) expect(typeof s.values[i]).toBe('string');
}

// ---------------------------------------------------------------------------------------------
// Every action kind, both flavors, several versions

const VERSIONS: readonly ServerVersion[] = [
  parseVersion('10.4.32-MariaDB'),
  parseVersion('10.5.1-MariaDB'),
  parseVersion('10.11.6-MariaDB-0+deb12u1'),
  parseVersion('11.4.2', 'mariadb.org binary distribution'),
  parseVersion('5.6.51-log'),
  parseVersion('5.7.44'),
  parseVersion('8.0.21'),
  parseVersion('8.0.22'),
  parseVersion('8.0.23'),
  parseVersion('8.4.3'),
];

/** Every kind of Action (the Record makes a new kind a compile error here until it is listed). */
function actions(host: string): Record<Action['kind'], Action[]> {
  return {
    'set-read-only': [
      { kind: 'set-read-only', instance: 'db001', readOnly: true },
      { kind: 'set-read-only', instance: 'db001', readOnly: false },
    ],
    'start-replication': [{ kind: 'start-replication', instance: 'db002' }],
    'change-source': [
      { kind: 'change-source', instance: 'db002', source: 'db001', host, port: 3306, settings: DEFAULT_REPLICATION, waitForSource: false },
      { kind: 'change-source', instance: 'db003', source: 'db002', host, port: 65535, settings: { connectRetry: 60, heartbeatPeriod: 30 }, waitForSource: true },
      { kind: 'change-source', instance: 'db003', source: 'db002', host, port: 3306, settings: DEFAULT_REPLICATION, waitForSource: false, delaySeconds: 0 },
    ],
    'wait-caught-up': [{ kind: 'wait-caught-up', instance: 'db002', target: 'db001', timeoutSeconds: 30 }],
    promote: [{ kind: 'promote', instance: 'db002' }],
    'drain-relay-log': [
      { kind: 'drain-relay-log', instance: 'db002', timeoutSeconds: 30 },
      { kind: 'drain-relay-log', instance: 'db002', timeoutSeconds: 30, wait: false },
    ],
    undelay: [{ kind: 'undelay', instance: 'db002', timeoutSeconds: 30 }],
    route: [{ kind: 'route', instance: 'db001', router: { kind: 'haproxy', address: '127.0.0.1:9999', writer: 'rw' }, backend: 'rw', to: 'maint', shutdownSessions: true }],
  };
}

describe('statements for every action, with hostile hosts, users and passwords', () => {
  it('sees both flavors and the old and new vocabularies', () => {
    expect(new Set(VERSIONS.map((v) => v.flavor))).toEqual(new Set(['mysql', 'mariadb']));
    const texts = VERSIONS.flatMap((v) => statementsFor(actions('h')['change-source'][0] as Action, v, { user: 'u', password: 'p' }).map((s) => s.sql));
    expect(texts.some((t) => t.startsWith('CHANGE REPLICATION SOURCE TO'))).toBe(true);
    expect(texts.some((t) => t.startsWith('CHANGE MASTER TO') && t.includes('MASTER_USE_GTID=slave_pos'))).toBe(true);
    expect(texts.some((t) => t.startsWith('CHANGE MASTER TO') && t.includes('MASTER_AUTO_POSITION=1'))).toBe(true);
    expect(texts).toContain('STOP SLAVE');
    expect(texts).toContain('STOP REPLICA');
  });

  const cases = VERSIONS.map((v) => [`${v.flavor} ${v.major}.${v.minor}.${v.patch}`, v] as const);
  it.each(cases)('%s', (_name, v) => {
    let changeSources = 0;
    for (const h of HOSTILE) {
      const pw = password(h);
      const repl = { user: h, password: pw };
      for (const list of Object.values(actions(h))) {
        for (const action of list) {
          const statements = statementsFor(action, v, repl);
          if (action.kind === 'wait-caught-up' || action.kind === 'route') expect(statements).toEqual([]); // not SQL: a wait, a router call
          else expect(statements.length).toBeGreaterThan(0);
          for (const s of statements) {
            checkBound(s, [h, pw]);
            checkDisplayed(s, pw);
            if (s.values.length > 0 && action.kind === 'undelay') {
              // Only the delay itself: MASTER_DELAY=0 / SOURCE_DELAY=0.
              expect(s.values).toEqual([0]);
              expect(s.secret).toEqual([]);
            } else if (s.values.length > 0) {
              changeSources += 1;
              // Otherwise only CHANGE MASTER / CHANGE REPLICATION SOURCE binds values: the host, port,
              // user and password, in that order, then the two settings (and a delay, when set);
              // only the password is secret.
              if (action.kind !== 'change-source') throw new Error(`${action.kind} bound values`);
              expect(s.values).toEqual([h, action.port, h, pw, action.settings.connectRetry, action.settings.heartbeatPeriod, ...(action.delaySeconds !== undefined ? [action.delaySeconds] : [])]);
              expect(s.secret).toEqual([3]);
            } else {
              expect(s.secret).toEqual([]);
            }
          }
          // What a plan shows: the same statements, the password never known, never shown.
          const shown = displayAction(action, `${v.major}.${v.minor}.${v.patch}`, v.flavor === 'mariadb' ? 'MariaDB' : '', h);
          expect(shown.join('\n')).not.toContain(pw);
          if (action.kind === 'route') expect(shown).toEqual(['-- haproxy 127.0.0.1:9999: set server rw/db001 state maint; shutdown sessions server rw/db001']);
          else if (action.kind !== 'wait-caught-up') {
            expect(shown).toEqual(statementsFor(action, v, { user: h, password: '' }).map(displaySql));
            for (const line of shown) expect(line).not.toMatch(/[\r\n]/);
          }
        }
      }
    }
    expect(changeSources).toBe(HOSTILE.length * actions('h')['change-source'].length);
  });

  it('binds a hostile password with backslashes and quotes to exactly one literal, whatever the source', () => {
    for (const v of VERSIONS) {
      for (const h of HOSTILE) {
        const s = changeSource(v, { host: '127.0.0.11', port: 3306, user: 'repl', password: h, connectRetry: 2, heartbeatPeriod: 1 });
        const sent = mysql.format(s.sql, s.values as FormatValues);
        const literals = tokenize(sent).filter((t) => t.kind === 'literal');
        expect(literals).toEqual([
          { kind: 'literal', value: '127.0.0.11' },
          { kind: 'literal', value: 'repl' },
          { kind: 'literal', value: h },
        ]);
        expect(displaySql(s)).toContain("_PASSWORD='****'");
      }
    }
  });

  it('the sandbox creates its users with the names and passwords bound, never in the text', () => {
    for (const flavor of ['mariadb', 'mysql'] as const) {
      for (const h of HOSTILE) {
        const admin = { user: `a${h}`, password: password(`admin${h}`) };
        const repl = { user: `r${h}`, password: password(`repl${h}`) };
        for (const s of userStatements(flavor, admin, repl)) {
          checkBound(s, [admin.user, admin.password, repl.user, repl.password]);
          const shown = displaySql(s);
          expect(shown).not.toContain(admin.password);
          expect(shown).not.toContain(repl.password);
        }
      }
    }
  });

  it('the reader of sent SQL is strict: it finds a value that was spliced into the text', () => {
    const spliced = { sql: "CHANGE MASTER TO MASTER_HOST='x'; DROP TABLE x; --', MASTER_PORT=?", values: [3306], secret: [] };
    expect(() => checkBound(spliced, ["x'; DROP TABLE x; --"])).toThrow();
    expect(() => tokenize("SELECT '\\'")).toThrow(/unterminated/);
    expect(() => tokenize('SELECT 1; SELECT 2')).toThrow(/separator/);
    expect(tokenize("'a\\'b''c\\\\'")).toEqual([{ kind: 'literal', value: "a'b'c\\" }]);
    expect(unescapedQuotes("x='a\\'b', y='c''d'")).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------
// The schema refuses them before any statement is built

const BASE_INSTANCES = (host: string, name = 'db002', source = 'db001'): string =>
  `instances:\n  db001: { host: 127.0.0.11 }\n  ${JSON.stringify(name)}: { host: ${JSON.stringify(host)}, source: ${JSON.stringify(source)} }\n`;

function refused(text: string): string[] {
  const { spec, issues } = parseTopologyText(text, 'topologies/hostile.yaml');
  expect(spec).toBeUndefined();
  const lines = issues.map(formatIssue);
  for (const line of lines) {
    expect(line).toMatch(/^topologies\/hostile\.yaml:\d+:\d+: /);
    expect(line).not.toMatch(/[\r\n]/);
  }
  return lines;
}

describe('the schema refuses hostile hosts, users and names', () => {
  // Every hostile value except the ones that are merely long or fine as they are.
  const bad = HOSTILE.filter((h) => !/^x+$/.test(h));

  it.each(bad.map((h) => [JSON.stringify(h).slice(0, 60), h] as const))('%s', (_title, h) => {
    // As a host.
    expect(refused(`cluster: shop\n${BASE_INSTANCES(h)}`).join('\n')).toContain('instances.db002.host: ');
    expect(refused(`cluster: shop\n${BASE_INSTANCES(h)}`).join('\n')).toMatch(/is not a valid host|must be at most 255 characters/);
    // As the admin and the replication user.
    for (const role of ['admin', 'replication'] as const) {
      const other = role === 'admin' ? 'replication' : 'admin';
      const text =
        `cluster: shop\ncredentials:\n  ${role}: { user: ${JSON.stringify(h)}, passwordEnv: PW_A }\n` +
        `  ${other}: { user: ok, passwordEnv: PW_B }\n${BASE_INSTANCES('127.0.0.12')}`;
      expect(refused(text).join('\n')).toContain(`credentials.${role}.user: `);
      expect(refused(text).join('\n')).toContain('is not a valid user name');
    }
    // As the cluster name, an instance name, and a source.
    expect(refused(`cluster: ${JSON.stringify(h)}\n${BASE_INSTANCES('127.0.0.12')}`).join('\n')).toMatch(/^[^\n]*:1:10: cluster: .* is not a valid name/s);
    expect(refused(`cluster: shop\n${BASE_INSTANCES('127.0.0.12', h)}`).join('\n')).toContain('not a valid instance name');
    expect(refused(`cluster: shop\n${BASE_INSTANCES('127.0.0.12', 'db002', h)}`).join('\n')).toMatch(/instances\.db002\.source: .* is not a valid name/s);
  });

  it('a long but plain value is refused by length where the schema limits it', () => {
    const long = 'x'.repeat(4096);
    expect(refused(`cluster: shop\n${BASE_INSTANCES(long)}`)).toContain('topologies/hostile.yaml:4:20: instances.db002.host: must be at most 255 characters');
    expect(refused(`cluster: ${long}\n${BASE_INSTANCES('127.0.0.12')}`)[0]).toMatch(/cluster: "x{43}\.\.\." is not a valid name/);
  });

  it('whatever string a file gives as host, user or name, a spec holds it only when it is plain (fixed seed)', () => {
    const unit = fc.oneof(
      fc.constantFrom("'", '"', '`', ';', '\\', '\n', '\r', '\t', '\u0000', ' ', '#', '-', '%', '@', '/', '*', '\u2019', '\uff07', '?', '=', ','),
      fc.constantFrom('a', 'b', 'Z', '0', '1', '.', ':', '_'),
    );
    const value = fc.string({ unit, minLength: 1, maxLength: 12 });
    const PLAIN_HOST = /^[A-Za-z0-9.:-]+$/;
    const PLAIN_NAME = /^[A-Za-z0-9_.-]+$/;
    fc.assert(
      fc.property(value, value, value, (host, user, name) => {
        const text =
          `cluster: shop\ncredentials:\n  admin: { user: ${JSON.stringify(user)}, passwordEnv: PW_A }\n` +
          `  replication: { user: repl, passwordEnv: PW_B }\n${BASE_INSTANCES(host, name)}`;
        const { spec } = parseTopologyText(text, 'topologies/hostile.yaml');
        if (!spec) return;
        for (const i of spec.instances) {
          expect(i.host).toMatch(PLAIN_HOST);
          expect(i.name).toMatch(PLAIN_NAME);
        }
        expect(spec.credentials.admin.user).toMatch(PLAIN_NAME);
      }),
      { seed: 4242, numRuns: 2000 },
    );
  });
});

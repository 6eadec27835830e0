// Bad input, at random: the valid topology fixtures mutated line by line and character by
// character (fast-check, fixed seed). Whatever the text, parsing never throws, a spec it returns
// obeys the schema's patterns, every problem is one `file:line:col: ` line, and the real CLI's
// `validate` answers 0 or 1 without an internal error or a stack trace.
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/main.js';
import { formatIssue, loadTopologies, parseTopologyText } from '../../src/config/load.js';
import type { ClusterSpec } from '../../src/core/model.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VALID = path.join(ROOT, 'test/fixtures/topologies/valid');
const SEED = 20_260_406;
const ISSUE_LINE = /^[^\n]+:\d+:\d+: /;
const ENV = {
  TOPOGIT_PASSWORD: 'fuzz-admin-pw',
  TOPOGIT_REPL_PASSWORD: 'fuzz-repl-pw',
  BILLING_ADMIN_PASSWORD: 'fuzz-billing-pw',
};

/** The valid fixtures, each as its name and text. */
const FIXTURES: readonly { name: string; text: string }[] = readdirSync(VALID)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .map((name) => ({ name, text: readFileSync(path.join(VALID, name), 'utf8') }));

/** The patterns the schema states, read from the schema itself so the test follows it. */
const schema = JSON.parse(readFileSync(path.join(ROOT, 'schemas/topology.schema.json'), 'utf8')) as {
  definitions: Record<string, { pattern?: string; maxLength?: number }>;
};
const pattern = (name: string): RegExp => new RegExp(schema.definitions[name]?.pattern ?? '(?!)');
const NAME = pattern('name');
const HOST = pattern('host');
const USER = pattern('user');
const ENV_NAME = pattern('envName');
const HOST_MAX = schema.definitions['host']?.maxLength ?? 255;

// ---------------------------------------------------------------------------------------------
// Mutations

/** Characters that break YAML, SQL, shells and terminals, plus some harmless ones. */
const HOSTILE_UNITS = [
  "'", '"', '`', ';', '\\', '\n', '\r', '\r\n', '\t', '\u0000', '\u0007', '\u001b', ' ', ':', ': ', '- ', '-', '#', '{', '}',
  '[', ']', ',', '&', '&x ', '*', '*x', '!', '!!js/function ', '|', '>', '%', '@', '?', '<<', '---', '...', '~', 'null',
  '\u00a0', '\u2019', '\u201c', '\uff07', '\u2028', '\u0085', '\ufeff', '\u200b', 'é', '\u0430', '😀', '\ud800', 'a', 'Z', '0',
  '9', '.', '_', "'; DROP TABLE x; --", '$(id)', '%s',
] as const;
const hostileText = fc.string({ unit: fc.constantFrom(...HOSTILE_UNITS), minLength: 1, maxLength: 6 });

type Mutation =
  | { kind: 'delete'; line: number }
  | { kind: 'duplicate'; line: number }
  | { kind: 'swap'; line: number; other: number }
  | { kind: 'insert'; line: number; col: number; text: string }
  | { kind: 'replace'; line: number; col: number; text: string }
  | { kind: 'indent'; line: number; delta: number }
  | { kind: 'truncate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), line: fc.nat(), other: fc.nat() }),
  { arbitrary: fc.record({ kind: fc.constant('insert' as const), line: fc.nat(), col: fc.nat(), text: hostileText }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('replace' as const), line: fc.nat(), col: fc.nat(), text: hostileText }), weight: 2 },
  fc.record({ kind: fc.constant('indent' as const), line: fc.nat(), delta: fc.integer({ min: -4, max: 4 }).filter((d) => d !== 0) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
);

function applyMutation(text: string, m: Mutation): string {
  if (m.kind === 'truncate') return text.slice(0, Math.floor(text.length * m.at));
  const lines = text.split('\n');
  const n = m.line % Math.max(lines.length, 1);
  const line = lines[n] ?? '';
  switch (m.kind) {
    case 'delete':
      lines.splice(n, 1);
      break;
    case 'duplicate':
      lines.splice(n, 0, line);
      break;
    case 'swap': {
      const o = m.other % Math.max(lines.length, 1);
      lines[n] = lines[o] ?? '';
      lines[o] = line;
      break;
    }
    case 'insert': {
      const c = m.col % (line.length + 1);
      lines[n] = line.slice(0, c) + m.text + line.slice(c);
      break;
    }
    case 'replace': {
      const c = m.col % (line.length + 1);
      lines[n] = line.slice(0, c) + m.text + line.slice(c + m.text.length);
      break;
    }
    case 'indent':
      lines[n] = m.delta > 0 ? ' '.repeat(m.delta) + line : line.replace(new RegExp(`^ {0,${-m.delta}}`), '');
      break;
  }
  return lines.join('\n');
}

/** A valid fixture with 1-4 mutations applied, in order. */
const mutated: fc.Arbitrary<{ fixture: string; text: string }> = fc
  .record({ f: fc.nat({ max: FIXTURES.length - 1 }), ms: fc.array(mutation, { minLength: 1, maxLength: 4 }) })
  .map(({ f, ms }) => {
    const fixture = FIXTURES[f] as { name: string; text: string };
    return { fixture: fixture.name, text: ms.reduce(applyMutation, fixture.text) };
  });

// ---------------------------------------------------------------------------------------------
// What must hold for any text

/** The parse result of one text, checked; returns whether a spec came back. */
function checkParse(text: string, file: string): boolean {
  let result: ReturnType<typeof parseTopologyText> | undefined;
  expect(() => {
    result = parseTopologyText(text, file);
  }).not.toThrow();
  const { spec, issues } = result as ReturnType<typeof parseTopologyText>;
  if (spec) {
    expect(issues).toEqual([]);
    checkSpec(spec);
    return true;
  }
  expect(issues.length).toBeGreaterThan(0);
  for (const i of issues) {
    const line = formatIssue(i);
    expect(line).toMatch(ISSUE_LINE);
    expect(line).not.toMatch(/[\r\n]/);
    expect(line.startsWith(`${file}:`)).toBe(true);
    expect(Number.isInteger(i.line) && i.line >= 1).toBe(true);
    expect(Number.isInteger(i.col) && i.col >= 1).toBe(true);
  }
  return false;
}

/** A spec that parsed holds only values the schema's patterns allow: nothing hostile reaches a server. */
function checkSpec(spec: ClusterSpec): void {
  expect(spec.cluster).toMatch(NAME);
  expect(spec.instances.length).toBeGreaterThan(0);
  const names = new Set(spec.instances.map((i) => i.name));
  expect(names.size).toBe(spec.instances.length);
  let primaries = 0;
  for (const i of spec.instances) {
    expect(i.name).toMatch(NAME);
    expect(i.host).toMatch(HOST);
    expect(i.host.length).toBeLessThanOrEqual(HOST_MAX);
    expect(Number.isInteger(i.port) && i.port >= 1 && i.port <= 65535).toBe(true);
    if (i.source === undefined) primaries += 1;
    else {
      expect(i.source).toMatch(NAME);
      expect(names.has(i.source)).toBe(true);
      expect(i.source).not.toBe(i.name);
    }
    expect(['prefer', 'neutral', 'never']).toContain(i.promotion);
  }
  expect(primaries).toBe(1);
  for (const role of ['admin', 'replication'] as const) {
    const ref = spec.credentials[role];
    expect(ref.user).toMatch(USER);
    if (ref.passwordEnv !== undefined) expect(ref.passwordEnv).toMatch(ENV_NAME);
    expect((ref.passwordEnv === undefined) !== (ref.passwordFile === undefined)).toBe(true);
  }
  for (const hook of [...spec.failover.hooks.preFailover, ...spec.failover.hooks.postFailover]) {
    expect(hook).not.toMatch(/[\u0000\r\n]/);
  }
  expect(spec.writeBack.author.name).not.toMatch(/[\u0000\r\n<>]/);
  expect(spec.writeBack.author.email).not.toMatch(/[\s<>]/);
}

describe('fuzzing the valid topology files', () => {
  it('every fixture is valid before it is mutated', () => {
    expect(FIXTURES.map((f) => f.name)).toEqual(['deep.yaml', 'failover.yaml', 'minimal.yml', 'shop.yaml']);
    for (const f of FIXTURES) expect(checkParse(f.text, `topologies/${f.name}`)).toBe(true);
  });

  it('parseTopologyText never throws, and returns a spec within the schema or one-line issues (500 runs)', () => {
    let specs = 0;
    let runs = 0;
    fc.assert(
      fc.property(mutated, ({ text }) => {
        runs += 1;
        if (checkParse(text, 'topologies/fuzz.yaml')) specs += 1;
      }),
      { seed: SEED, numRuns: 500 },
    );
    // Both outcomes are exercised: some mutations keep the file valid, most break it.
    expect(runs).toBeGreaterThanOrEqual(500);
    expect(specs).toBeGreaterThan(10);
    expect(specs).toBeLessThan(runs - 100);
  });

  it('inputs no mutation reaches: nesting deep enough to overflow the parser, and huge keys', () => {
    const base = 'cluster: c\ninstances:\n  db1: { host: h1 }\n';
    const inputs = [
      `${base}x: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`,
      `${base}x:\n${Array.from({ length: 3000 }, (_, n) => `${'  '.repeat(n + 1)}- \n`).join('')}`,
      `${base}x: ${'{a: '.repeat(5000)}1${'}'.repeat(5000)}\n`,
      `cluster: c\ninstances: { "${'d'.repeat(100_000)}": { host: h1 } }\n`,
      `cluster: c\ninstances:\n  ${'d'.repeat(5000)}: { host: h1 }\n`,
      `cluster: c\ninstances:\n  db1: { host: h1, "${'k'.repeat(10_000)}": 1 }\n`,
      '\u0000'.repeat(1000),
      '\ufeff',
      '\ufeff\ufeffcluster: c\n',
      '\r\r\r',
      '- - - - -',
      '"',
      "'",
      '`',
      '&a [*a]',
      '*a',
      '!!python/object/apply:os.system ["id"]',
      'cluster: !!js/undefined\ninstances: {}',
      '%YAML 9.9\n---\ncluster: c\n',
      '%TAG ! tag:evil.example,2000:\n---\ncluster: !x c\n',
    ];
    for (const text of inputs) checkParse(text, 'topologies/edge.yaml');
  });
});

describe('the real CLI validates mutated files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'topogit-fuzz-'));
  // deep.yaml names a password file relative to itself: keep it reachable so mutations can pass.
  cpSync(path.join(VALID, 'secrets'), path.join(dir, 'secrets'), { recursive: true });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function validate(text: string): Promise<{ code: number; out: string; err: string }> {
    const file = path.join(dir, 'fuzz.yaml');
    writeFileSync(file, text);
    let out = '';
    let err = '';
    const io: Io = { out: (s) => (out += s), err: (s) => (err += s), env: { ...ENV }, cwd: dir };
    const code = await main(['validate', file], io);
    return { code, out, err };
  }

  it('exits 0 or 1, never with an internal error or a stack trace, one line per problem (100 runs)', async () => {
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(mutated, async ({ text }) => {
        const { code, out, err } = await validate(text);
        const all = out + err;
        expect(all).not.toContain('internal error');
        expect(all).not.toContain('\n    at ');
        expect([0, 1]).toContain(code);
        // parseTopologyText and the CLI agree: no spec means exit 1.
        const { spec } = parseTopologyText(text, 'fuzz.yaml', { baseDir: dir });
        if (!spec) expect(code).toBe(1);
        if (code === 0) {
          valid += 1;
          expect(err).toBe('');
          expect(out).toMatch(/^1 topology file valid: [A-Za-z0-9][A-Za-z0-9_.-]*\n$/);
        } else {
          expect(err).not.toBe('');
          for (const line of err.replace(/\n$/, '').split('\n')) expect(line).toMatch(/^fuzz\.yaml:\d+:\d+: |^topogit: /);
        }
        // No password value ever shows, whether the file is valid or not.
        for (const pw of Object.values(ENV)) expect(all).not.toContain(pw);
        expect(all).not.toContain('s3cret-from-file');
      }),
      { seed: SEED, numRuns: 100 },
    );
    expect(valid).toBeGreaterThan(0);
  });

  // A newline in passwordFile must not split a message and forge a second, clean-looking
  // `file:line:col:` line: the schema refuses control characters and the path is quoted.
  it('refuses a file whose passwordFile holds a newline with one line per problem', async () => {
    const text = 'cluster: c\ncredentials:\n  admin: { user: a, passwordFile: "pw\\nfuzz.yaml:1:1: all good" }\n  replication: { user: r, passwordEnv: TOPOGIT_REPL_PASSWORD }\ninstances:\n  db1: { host: h1 }\n';
    const { code, err } = await validate(text);
    expect(code).toBe(1);
    expect(err.replace(/\n$/, '').split('\n')).toHaveLength(1);
    const { issues } = await loadTopologies(['fuzz.yaml'], { env: ENV, cwd: dir });
    for (const i of issues) expect(formatIssue(i)).not.toMatch(/[\r\n]/);
  });
});

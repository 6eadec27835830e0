import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TopogitError } from '../../src/core/errors.js';
import type { ClusterSpec } from '../../src/core/model.js';
import {
  DEFAULT_CREDENTIALS,
  DEFAULT_FAILOVER,
  DEFAULT_WRITE_BACK,
  formatIssue,
  loadTopologies,
  parseTopologyText,
  resolveCredentials,
} from '../../src/config/load.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = 'test/fixtures/topologies';
const ENV = { TOPOGIT_PASSWORD: 'pw-admin', TOPOGIT_REPL_PASSWORD: 'pw-repl', BILLING_ADMIN_PASSWORD: 'pw-billing' };

/** Every object and array reachable from `value` is frozen. */
function expectDeeplyFrozen(value: unknown, where = 'spec'): void {
  if (value === null || typeof value !== 'object') return;
  expect(Object.isFrozen(value), `${where} is frozen`).toBe(true);
  for (const [key, child] of Object.entries(value)) expectDeeplyFrozen(child, `${where}.${key}`);
}

function lines(issues: Parameters<typeof formatIssue>[0][]): string[] {
  return issues.map(formatIssue);
}

async function rejection(p: Promise<unknown>): Promise<TopogitError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TopogitError);
    return e as TopogitError;
  }
  throw new Error('expected a rejection');
}

function thrown(f: () => unknown): TopogitError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TopogitError);
    return e as TopogitError;
  }
  throw new Error('expected a throw');
}

describe('formatIssue', () => {
  it('renders file:line:col: path: message, and omits an empty path', () => {
    expect(
      formatIssue({
        file: 'topologies/shop.yaml',
        line: 12,
        col: 5,
        path: 'instances.db003.source',
        message: '"db009" is not an instance of cluster shop',
      }),
    ).toBe('topologies/shop.yaml:12:5: instances.db003.source: "db009" is not an instance of cluster shop');
    expect(formatIssue({ file: 'topologies/x.yaml', line: 1, col: 1, path: '', message: 'file is empty' })).toBe(
      'topologies/x.yaml:1:1: file is empty',
    );
  });
});

describe('valid topologies', () => {
  it('loads a directory: *.yaml and *.yml, sorted, no issues', async () => {
    const { specs, issues } = await loadTopologies([`${FIXTURES}/valid`], { env: ENV, cwd: ROOT });
    expect(lines(issues)).toEqual([]);
    expect(specs.map((s) => s.file)).toEqual([
      `${FIXTURES}/valid/deep.yaml`,
      `${FIXTURES}/valid/failover.yaml`,
      `${FIXTURES}/valid/minimal.yml`,
      `${FIXTURES}/valid/shop.yaml`,
    ]);
  });

  it('normalizes the example file into a frozen ClusterSpec', async () => {
    const { specs, issues } = await loadTopologies([`${FIXTURES}/valid/shop.yaml`], { env: ENV, cwd: ROOT });
    expect(issues).toEqual([]);
    const spec = specs[0] as ClusterSpec;
    expect(spec).toEqual({
      cluster: 'shop',
      flavor: 'auto',
      credentials: {
        admin: { user: 'topogit', passwordEnv: 'TOPOGIT_PASSWORD' },
        replication: { user: 'repl', passwordEnv: 'TOPOGIT_REPL_PASSWORD' },
      },
      instances: [
        { name: 'db001', host: '127.0.0.11', port: 3306, promotion: 'neutral' },
        { name: 'db002', host: '127.0.0.12', port: 3306, source: 'db001', promotion: 'neutral' },
        { name: 'db003', host: '127.0.0.13', port: 3306, source: 'db001', promotion: 'never' },
      ],
      failover: DEFAULT_FAILOVER,
      writeBack: DEFAULT_WRITE_BACK,
      file: `${FIXTURES}/valid/shop.yaml`,
    });
    expect('source' in (spec.instances[0] as object)).toBe(false);
    expect(spec.credentials).not.toBe(DEFAULT_CREDENTIALS);
    for (const o of [spec, spec.instances, spec.instances[1], spec.credentials, spec.credentials.admin, spec.failover]) {
      expect(Object.isFrozen(o)).toBe(true);
    }
    // `failover: { auto: false }` is written out, so it is a copy of the defaults; writeBack is not.
    expect(spec.failover).not.toBe(DEFAULT_FAILOVER);
    expect(spec.writeBack).toBe(DEFAULT_WRITE_BACK);
    expectDeeplyFrozen(spec);
  });

  it('keeps file order in a deeper tree and resolves passwordFile against the file directory', async () => {
    const { specs, issues } = await loadTopologies([`${FIXTURES}/valid/deep.yaml`], { env: ENV, cwd: ROOT });
    expect(issues).toEqual([]);
    const spec = specs[0] as ClusterSpec;
    expect(spec.cluster).toBe('billing');
    expect(spec.flavor).toBe('mariadb');
    expect(spec.failover).toEqual({ ...DEFAULT_FAILOVER, auto: true });
    expect(spec.instances.map((i) => [i.name, i.host, i.port, i.source, i.promotion])).toEqual([
      ['db104', 'db104.billing.internal', 3306, 'db103', 'never'],
      ['db101', 'db101.billing.internal', 3307, undefined, 'prefer'],
      ['db102', 'db102.billing.internal', 3307, 'db101', 'neutral'],
      ['db103', '::1', 3310, 'db102', 'neutral'],
    ]);
    expect(spec.credentials.replication.passwordFile).toBe(path.join(ROOT, FIXTURES, 'valid/secrets/billing-repl.pw'));
    expect(resolveCredentials(spec, ENV)).toEqual({
      admin: { user: 'admin', password: 'pw-billing' },
      replication: { user: 'repl_billing', password: 's3cret-from-file' },
    });
  });

  it('applies every default to a minimal file', () => {
    const text = readFileSync(path.join(ROOT, FIXTURES, 'valid/minimal.yml'), 'utf8');
    const { spec, issues } = parseTopologyText(text, 'topologies/tiny.yaml');
    expect(issues).toEqual([]);
    expect(spec).toEqual({
      cluster: 'tiny',
      flavor: 'auto',
      credentials: DEFAULT_CREDENTIALS,
      instances: [{ name: 'only', host: 'localhost', port: 3306, promotion: 'neutral' }],
      failover: {
        auto: false,
        maxLagSeconds: 10,
        blockSeconds: 3600,
        detection: { intervalMs: 2500 },
        formerPrimary: 'rejoin',
        reconcile: 'auto',
        hooks: { preFailover: [], postFailover: [] },
        quorum: 'majority',
        fence: { command: [], timeoutSeconds: 30 },
      },
      writeBack: { author: { name: 'topogit', email: 'topogit@localhost' }, push: true },
      file: 'topologies/tiny.yaml',
    });
    expect(spec?.credentials).toBe(DEFAULT_CREDENTIALS);
    expect(spec?.failover).toBe(DEFAULT_FAILOVER);
    expect(spec?.writeBack).toBe(DEFAULT_WRITE_BACK);
    expectDeeplyFrozen(spec);
  });

  it('keeps file order for instance names that look like numbers', () => {
    const text = 'cluster: n\ninstances:\n  "20": { host: h20 }\n  "3": { host: h3, source: "20" }\n  x1: { host: hx, source: "3" }\n';
    expect(parseTopologyText(text, 'n.yaml').spec?.instances.map((i) => i.name)).toEqual(['20', '3', 'x1']);
  });
});

describe('invalid topologies', () => {
  const dir = path.join(ROOT, FIXTURES, 'invalid');
  const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, string[]>;
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();

  it('has an expected.json entry for every fixture and no stale entries', () => {
    expect(Object.keys(expected).sort()).toEqual(files);
  });

  it.each(files)('%s', async (file) => {
    const { specs, issues } = await loadTopologies([`${FIXTURES}/invalid/${file}`], { env: ENV, cwd: ROOT });
    expect(lines(issues)).toEqual(expected[file]);
    expect(issues.length).toBeGreaterThan(0);
    for (const line of lines(issues)) expect(line).not.toMatch(/[\r\n]/);
    if (!file.startsWith('password-env-unset')) expect(specs).toEqual([]);
  });

  it('parseTopologyText never throws and returns a spec only without issues', () => {
    const inputs = [
      '',
      '\n\n',
      '---\n',
      '~',
      '42',
      '"just a string"',
      '{{{',
      ': :',
      '\t- x',
      '\u0000\u0001',
      'cluster: !!binary aGVsbG8=\ninstances: {}',
      'a: &x [*x]',
      'cluster: c\ninstances: { a: { host: h, source: a }, b: { host: h2, source: a } }',
      'cluster: c\ninstances:\n  a: { host: h }\n  "1": { host: h1, source: a }\n  1: { host: h2, source: a }\n',
      'cluster: c\ninstances: !foo { a: { host: h } }',
      `cluster: c\ninstances:\n${Array.from({ length: 200 }, (_, n) => `  i${n}: { host: h${n}${n === 0 ? '' : `, source: i${n - 1}`} }`).join('\n')}\n`,
    ];
    for (const text of inputs) {
      const result = parseTopologyText(text, 'f.yaml');
      expect(result.spec === undefined).toBe(result.issues.length > 0);
      for (const i of result.issues) {
        expect(i.line).toBeGreaterThanOrEqual(1);
        expect(i.col).toBeGreaterThanOrEqual(1);
        expect(formatIssue(i)).not.toMatch(/[\r\n]/);
      }
    }
    expect(parseTopologyText(inputs[inputs.length - 1] ?? '', 'f.yaml').spec?.instances).toHaveLength(200);
  });
});

describe('loadTopologies across files and the file system', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'topogit-config-'));
    await mkdir(path.join(tmp, 'topologies'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const put = (rel: string, text: string): Promise<void> => writeFile(path.join(tmp, rel), text);

  it('throws TOPOGIT_CONFIG_NOT_FOUND for a missing path and for a directory without topology files', async () => {
    const missing = await rejection(loadTopologies(['topologies/nope.yaml'], { env: ENV, cwd: tmp }));
    expect(missing.code).toBe('TOPOGIT_CONFIG_NOT_FOUND');
    expect(missing.message).toBe('topologies/nope.yaml: no such file or directory');

    await put('topologies/README.md', '# not a topology');
    await put('topologies/.#shop.yaml', 'editor lock file');
    const empty = await rejection(loadTopologies(['topologies'], { env: ENV, cwd: tmp }));
    expect(empty.code).toBe('TOPOGIT_CONFIG_NOT_FOUND');
    expect(empty.message).toBe('topologies/: no topology files (*.yaml, *.yml)');
  });

  it('reports a cluster name defined twice, on the later file, and keeps only the first spec', async () => {
    await put('topologies/shop.yaml', 'cluster: shop\ninstances:\n  db001: { host: 10.0.0.1 }\n');
    await put('topologies/shop2.yaml', 'cluster: shop\ninstances:\n  db101: { host: 10.0.0.2 }\n');
    const { specs, issues } = await loadTopologies(['topologies'], { env: ENV, cwd: tmp });
    expect(lines(issues)).toEqual(['topologies/shop2.yaml:1:10: cluster: "shop" is also defined in topologies/shop.yaml']);
    expect(specs.map((s) => s.file)).toEqual(['topologies/shop.yaml']);
  });

  it('reports a host:port used by two clusters', async () => {
    await put('topologies/a.yaml', 'cluster: a\ninstances:\n  db001: { host: 10.0.0.1 }\n');
    await put('topologies/b.yaml', 'cluster: b\ninstances:\n  db101: { host: 10.0.0.9 }\n  db102: { host: 10.0.0.1, port: 3306, source: db101 }\n');
    const { issues } = await loadTopologies(['topologies/b.yaml', 'topologies/a.yaml', 'topologies/a.yaml'], { env: ENV, cwd: tmp });
    expect(lines(issues)).toEqual([
      'topologies/a.yaml:3:18: instances.db001.host: 10.0.0.1:3306 is also used by instance db102 of cluster b (topologies/b.yaml)',
    ]);
  });

  it('shows files outside cwd by absolute path', async () => {
    await put('topologies/a.yaml', 'cluster: a\n');
    const cwd = path.join(tmp, 'topologies');
    await mkdir(path.join(cwd, 'sub'));
    const { issues } = await loadTopologies([path.join(tmp, 'topologies/a.yaml')], { env: ENV, cwd: path.join(cwd, 'sub') });
    expect(lines(issues)).toEqual([`${path.join(tmp, 'topologies/a.yaml')}:1:1: missing required key "instances"`]);
  });

  it('without a credentials block, needs TOPOGIT_PASSWORD and TOPOGIT_REPL_PASSWORD (empty counts as set)', async () => {
    await put('topologies/a.yaml', '# cluster a\ncluster: a\ninstances:\n  db001: { host: 10.0.0.1 }\n');
    const unset = await loadTopologies(['topologies/a.yaml'], { env: {}, cwd: tmp });
    expect(lines(unset.issues)).toEqual([
      'topologies/a.yaml:1:1: credentials: no credentials block and TOPOGIT_PASSWORD is not set',
      'topologies/a.yaml:1:1: credentials: no credentials block and TOPOGIT_REPL_PASSWORD is not set',
    ]);
    const empty = await loadTopologies(['topologies/a.yaml'], { env: { TOPOGIT_PASSWORD: '', TOPOGIT_REPL_PASSWORD: '' }, cwd: tmp });
    expect(empty.issues).toEqual([]);
    const badUser = await loadTopologies(['topologies/a.yaml'], { env: { ...ENV, TOPOGIT_USER: "x' OR 1" }, cwd: tmp });
    expect(lines(badUser.issues)).toEqual([
      "topologies/a.yaml:1:1: credentials: no credentials block and TOPOGIT_USER is not a valid user name: use 1-80 letters, digits, '_', '.', '-'",
    ]);
    const skipped = await loadTopologies(['topologies/a.yaml'], { env: {}, cwd: tmp, checkCredentials: false });
    expect(skipped.issues).toEqual([]);
  });

  it('reports an unset passwordEnv at its key and a missing passwordFile', async () => {
    await put(
      'topologies/a.yaml',
      [
        'cluster: a',
        'credentials:',
        '  admin:',
        '    user: topogit',
        '    passwordEnv: TOPOGIT_PASSWORD',
        '  replication: { user: repl, passwordFile: ../secrets/repl.pw }',
        'instances:',
        '  db001: { host: 10.0.0.1 }',
        '',
      ].join('\n'),
    );
    const { specs, issues } = await loadTopologies(['topologies'], { env: {}, cwd: tmp });
    expect(lines(issues)).toEqual([
      'topologies/a.yaml:5:18: credentials.admin.passwordEnv: environment variable TOPOGIT_PASSWORD is not set',
      'topologies/a.yaml:6:44: credentials.replication.passwordFile: password file "secrets/repl.pw" does not exist',
    ]);
    await mkdir(path.join(tmp, 'secrets'));
    await put('secrets/repl.pw', 'from-file\n\n');
    const again = await loadTopologies(['topologies'], { env: { TOPOGIT_PASSWORD: 'x' }, cwd: tmp });
    expect(again.issues).toEqual([]);
    const spec = specs[0] as ClusterSpec;
    expect(spec.credentials.replication.passwordFile).toBe(path.join(tmp, 'secrets/repl.pw'));
    // Only one trailing newline is trimmed.
    expect(resolveCredentials(spec, { TOPOGIT_PASSWORD: '' })).toEqual({
      admin: { user: 'topogit', password: '' },
      replication: { user: 'repl', password: 'from-file\n' },
    });
  });

  it.skipIf(process.getuid?.() === 0)('reports an unreadable file as an issue', async () => {
    await put('topologies/a.yaml', 'cluster: a\n');
    await chmod(path.join(tmp, 'topologies/a.yaml'), 0o000);
    const { issues } = await loadTopologies(['topologies'], { env: ENV, cwd: tmp });
    expect(lines(issues)).toEqual(['topologies/a.yaml:1:1: cannot read file (EACCES)']);
  });
});

describe('resolveCredentials', () => {
  const SECRET = 'hunter2-do-not-print';
  const parse = (text: string): ClusterSpec => {
    const { spec, issues } = parseTopologyText(text, '/etc/topogit/topologies/shop.yaml');
    expect(issues).toEqual([]);
    return spec as ClusterSpec;
  };
  const defaulted = parse('cluster: shop\ninstances:\n  db001: { host: 10.0.0.1 }\n');
  const explicit = parse(
    [
      'cluster: shop',
      'credentials:',
      '  admin: { user: boss, passwordEnv: SHOP_ADMIN_PW }',
      '  replication: { user: r, passwordFile: /nonexistent/topogit/repl.pw }',
      'instances:',
      '  db001: { host: 10.0.0.1 }',
      '',
    ].join('\n'),
  );

  it('lets TOPOGIT_USER / TOPOGIT_REPL_USER override the users only without a credentials block', () => {
    expect(resolveCredentials(defaulted, { TOPOGIT_PASSWORD: 'a', TOPOGIT_REPL_PASSWORD: 'b' })).toEqual({
      admin: { user: 'topogit', password: 'a' },
      replication: { user: 'repl', password: 'b' },
    });
    const env = { TOPOGIT_USER: 'root', TOPOGIT_REPL_USER: 'replicator', TOPOGIT_PASSWORD: '', TOPOGIT_REPL_PASSWORD: 'b' };
    expect(resolveCredentials(defaulted, env)).toEqual({
      admin: { user: 'root', password: '' },
      replication: { user: 'replicator', password: 'b' },
    });
    const explicitEnv = { TOPOGIT_USER: 'root', SHOP_ADMIN_PW: 'x' };
    expect(() => resolveCredentials(explicit, explicitEnv)).toThrow(TopogitError); // replication file is missing
    expect(thrown(() => resolveCredentials(explicit, explicitEnv)).message).not.toContain('root');
  });

  it('names the missing variable or file and never the password', () => {
    const missingEnv = thrown(() => resolveCredentials(defaulted, { TOPOGIT_PASSWORD: SECRET }));
    expect(missingEnv.code).toBe('TOPOGIT_SECRET_MISSING');
    expect(missingEnv.message).toBe('cluster shop has no credentials block and TOPOGIT_REPL_PASSWORD is not set');

    const unsetVar = thrown(() => resolveCredentials(explicit, {}));
    expect(unsetVar.code).toBe('TOPOGIT_SECRET_MISSING');
    expect(unsetVar.message).toBe('cluster shop: credentials.admin: environment variable SHOP_ADMIN_PW is not set');

    const missingFile = thrown(() => resolveCredentials(explicit, { SHOP_ADMIN_PW: SECRET }));
    expect(missingFile.code).toBe('TOPOGIT_SECRET_MISSING');
    expect(missingFile.message).toBe(
      'cluster shop: credentials.replication: cannot read password file "/nonexistent/topogit/repl.pw" (ENOENT)',
    );

    const badUser = thrown(() => resolveCredentials(defaulted, { TOPOGIT_USER: `${SECRET}'`, TOPOGIT_PASSWORD: SECRET }));
    expect(badUser.code).toBe('TOPOGIT_CONFIG_INVALID');

    for (const e of [missingEnv, unsetVar, missingFile, badUser]) {
      expect(`${e.message} ${e.hint ?? ''} ${e.stack ?? ''}`).not.toContain(SECRET);
    }
  });

  it('resolves a relative passwordFile of parseTopologyText against the file directory', () => {
    const spec = parse(
      'cluster: s\ncredentials:\n  admin: { user: a, passwordFile: pw/admin }\n  replication: { user: r, passwordEnv: R }\ninstances:\n  d: { host: h }\n',
    );
    expect(spec.credentials.admin.passwordFile).toBe('/etc/topogit/topologies/pw/admin');
  });
});

describe('failover and writeBack blocks', () => {
  const BASE = 'cluster: s\ninstances:\n  db1: { host: 10.0.0.1 }\n  db2: { host: 10.0.0.2, source: db1 }\n';
  const parse = (extra: string): ClusterSpec => {
    const { spec, issues } = parseTopologyText(BASE + extra, 't.yaml');
    expect(lines(issues)).toEqual([]);
    return spec as ClusterSpec;
  };
  const problems = (extra: string): string[] => {
    const { spec, issues } = parseTopologyText(BASE + extra, 't.yaml');
    expect(spec).toBeUndefined();
    return lines(issues);
  };

  it('normalizes every key of the full fixture', () => {
    const text = readFileSync(path.join(ROOT, FIXTURES, 'valid/failover.yaml'), 'utf8');
    const { spec, issues } = parseTopologyText(text, 'topologies/orders.yaml');
    expect(issues).toEqual([]);
    expect(spec?.failover).toEqual({
      auto: true,
      maxLagSeconds: 0,
      blockSeconds: 600,
      detection: { intervalMs: 250 },
      formerPrimary: 'fence',
      reconcile: 'report',
      hooks: {
        preFailover: ['./hooks/pre.sh', '/usr/local/bin/check-quorum --cluster orders'],
        postFailover: ['./hooks/post.sh'],
      },
      quorum: 'any',
      fence: { command: ['./hooks/stonith.sh db201'], timeoutSeconds: 5 },
    });
    expect(spec?.writeBack).toEqual({ author: { name: 'Orders Ops Bot', email: 'ops-bot@orders.example' }, push: false });
    expectDeeplyFrozen(spec);
  });

  it('gives a file without the blocks the defaults, by identity, and the defaults cannot be changed', () => {
    const spec = parse('');
    expect(spec.failover).toBe(DEFAULT_FAILOVER);
    expect(spec.writeBack).toBe(DEFAULT_WRITE_BACK);
    expectDeeplyFrozen(DEFAULT_FAILOVER, 'DEFAULT_FAILOVER');
    expectDeeplyFrozen(DEFAULT_WRITE_BACK, 'DEFAULT_WRITE_BACK');
    expect(() => {
      (spec.failover as { auto: boolean }).auto = true;
    }).toThrow(TypeError);
    expect(() => (spec.failover.hooks.preFailover as string[]).push('rm -rf /')).toThrow(TypeError);
    expect(() => {
      (spec.writeBack.author as { email: string }).email = 'x@y';
    }).toThrow(TypeError);
    expect(DEFAULT_FAILOVER.auto).toBe(false);
    expect(DEFAULT_FAILOVER.hooks.preFailover).toEqual([]);
    expect(DEFAULT_WRITE_BACK.author.email).toBe('topogit@localhost');
  });

  it('defaults each key a partial block leaves out, and copies the hook lists', () => {
    const empty = parse('failover: {}\nwriteBack: {}\n');
    expect(empty.failover).toEqual(DEFAULT_FAILOVER);
    expect(empty.writeBack).toEqual(DEFAULT_WRITE_BACK);

    const partial = parse('failover:\n  auto: true\n  detection: {}\n  hooks:\n    postFailover: [./notify.sh]\nwriteBack:\n  push: false\n');
    expect(partial.failover).toEqual({ ...DEFAULT_FAILOVER, auto: true, hooks: { preFailover: [], postFailover: ['./notify.sh'] } });
    expect(partial.writeBack).toEqual({ author: DEFAULT_WRITE_BACK.author, push: false });
    expectDeeplyFrozen(partial);
  });

  it('accepts the limits of every range and the longest author, email and command', () => {
    const spec = parse(
      [
        'failover:',
        '  maxLagSeconds: 86400',
        '  blockSeconds: 31536000',
        '  detection: { intervalMs: 600000 }',
        `  hooks: { preFailover: ["${'x'.repeat(4096)}"] }`,
        'writeBack:',
        `  author: { name: "${'n'.repeat(200)}", email: "${'a'.repeat(250)}@b.c" }`,
        '',
      ].join('\n'),
    );
    expect(spec.failover.maxLagSeconds).toBe(86400);
    expect(spec.failover.blockSeconds).toBe(31536000);
    expect(spec.failover.detection.intervalMs).toBe(600000);
    expect(spec.failover.hooks.preFailover[0]).toHaveLength(4096);
    expect(spec.writeBack.author.email).toHaveLength(254);
    const low = parse('failover: { maxLagSeconds: 0, blockSeconds: 0, detection: { intervalMs: 100 } }\n');
    expect([low.failover.maxLagSeconds, low.failover.blockSeconds, low.failover.detection.intervalMs]).toEqual([0, 0, 100]);
  });

  const REJECTED: [string, string[]][] = [
    ['failover: { maxLagSeconds: 86401 }', ['t.yaml:5:28: failover.maxLagSeconds: must be an integer between 0 and 86400']],
    ['failover: { maxLagSeconds: 1.5 }', ['t.yaml:5:28: failover.maxLagSeconds: must be an integer between 0 and 86400']],
    ['failover: { blockSeconds: "1h" }', ['t.yaml:5:27: failover.blockSeconds: must be an integer between 0 and 31536000']],
    ['failover: { detection: { intervalMs: 600001 } }', ['t.yaml:5:38: failover.detection.intervalMs: must be an integer between 100 and 600000']],
    ['failover: { detection: 1000 }', ['t.yaml:5:24: failover.detection: must be a mapping']],
    ['failover: { reconcile: fix }', ['t.yaml:5:24: failover.reconcile: must be one of auto, report']],
    ['failover: { hooks: [./pre.sh] }', ['t.yaml:5:20: failover.hooks: must be a mapping']],
    ['failover: { hooks: { onCrash: [] } }', ['t.yaml:5:22: failover.hooks.onCrash: unknown key (allowed: preFailover, postFailover)']],
    [
      'failover: { hooks: { preFailover: [ok, "", 7, "a\\rb"] } }',
      [
        't.yaml:5:40: failover.hooks.preFailover[1]: must not be empty',
        't.yaml:5:44: failover.hooks.preFailover[2]: must be a string',
        't.yaml:5:47: failover.hooks.preFailover[3]: "a\\rb" is not a valid command: write it on one line, without newline, carriage return or NUL characters',
      ],
    ],
    [
      `failover: { hooks: { postFailover: ["${'x'.repeat(4097)}"] } }`,
      ['t.yaml:5:37: failover.hooks.postFailover[0]: must be at most 4096 characters'],
    ],
    ['writeBack: { push: yes }', ['t.yaml:5:20: writeBack.push: must be true or false']],
    ['writeBack: { author: { name: ops } }', ['t.yaml:5:22: writeBack.author: missing required key "email"']],
    [
      'writeBack: { author: { name: "ops <ops@x>", email: "<ops@x>" } }',
      [
        't.yaml:5:30: writeBack.author.name: "ops <ops@x>" is not a valid author name: write it on one line, without \'<\' or \'>\'',
        't.yaml:5:52: writeBack.author.email: "<ops@x>" is not a valid email address: use local@domain, without spaces, \'<\' or \'>\'',
      ],
    ],
    [
      `writeBack: { author: { name: "${'n'.repeat(201)}", email: "${'a'.repeat(251)}@b.c" } }`,
      ['t.yaml:5:30: writeBack.author.name: must be at most 200 characters', 't.yaml:5:242: writeBack.author.email: must be at most 254 characters'],
    ],
    [
      'writeBack: { author: { name: "", email: a@b, date: now } }',
      ['t.yaml:5:30: writeBack.author.name: must not be empty', 't.yaml:5:46: writeBack.author.date: unknown key (allowed: name, email)'],
    ],
  ];

  it.each(REJECTED.map(([extra, expected]) => [extra.length > 72 ? `${extra.slice(0, 64)}...` : extra, extra, expected] as const))(
    '%s',
    (_title, extra, expected) => {
      expect(problems(`${extra}\n`)).toEqual(expected);
    },
  );

  it('brackets only list indexes: a numeric instance name stays dotted', () => {
    expect(lines(parseTopologyText('cluster: c\ninstances:\n  "20": { host: h, port: 0 }\n', 'n.yaml').issues)).toEqual([
      'n.yaml:3:26: instances.20.port: must be an integer between 1 and 65535',
    ]);
  });

  it('declares the same defaults in the schema as DEFAULT_FAILOVER and DEFAULT_WRITE_BACK', () => {
    interface Node {
      default?: unknown;
      properties?: Record<string, Node>;
    }
    const schema = JSON.parse(readFileSync(path.join(ROOT, 'schemas/topology.schema.json'), 'utf8')) as Node;
    const compare = (node: Node | undefined, value: unknown, where: string): void => {
      expect(node, where).toBeDefined();
      expect(node?.default, `${where} default`).toEqual(value);
      for (const [key, child] of Object.entries(node?.properties ?? {})) {
        compare(child, (value as Record<string, unknown>)[key], `${where}.${key}`);
      }
    };
    compare(schema.properties?.['failover'], DEFAULT_FAILOVER, 'failover');
    compare(schema.properties?.['writeBack'], DEFAULT_WRITE_BACK, 'writeBack');
  });
});

describe('schemas/topology.schema.json', () => {
  const schema = JSON.parse(readFileSync(path.join(ROOT, 'schemas/topology.schema.json'), 'utf8')) as Record<string, unknown>;

  it('is draft-07 with the published $id', () => {
    expect(schema['$schema']).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema['$id']).toBe('https://topogit.dev/schemas/topology.schema.json');
  });

  it('gives every property a title and a description', () => {
    const missing: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (node === null || typeof node !== 'object') return;
      const props = (node as { properties?: Record<string, unknown> }).properties;
      for (const [key, value] of Object.entries(props ?? {})) {
        const v = value as { title?: unknown; description?: unknown };
        if (typeof v.title !== 'string' || typeof v.description !== 'string') missing.push(`${where}.${key}`);
      }
      for (const [key, value] of Object.entries(node)) walk(value, `${where}.${key}`);
    };
    walk(schema, '#');
    expect(missing).toEqual([]);
  });
});

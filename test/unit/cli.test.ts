// The CLI's contract for bad input: one line each, the documented exit codes, never a stack trace.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { main, parseEndpoint } from '../../src/cli/main.js';

const root = path.resolve(import.meta.dirname, '../..');
const env = { TOPOGIT_PASSWORD: 'x', TOPOGIT_REPL_PASSWORD: 'y' };

async function run(argv: string[], cwd = root, e: NodeJS.ProcessEnv = env) {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s), env: e, cwd });
  return { code, out, err };
}

describe('topogit validate', () => {
  it('accepts the valid fixtures with exit 0', async () => {
    const r = await run(['validate', 'test/fixtures/topologies/valid/shop.yaml', 'test/fixtures/topologies/valid/minimal.yml']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/2 topology files valid/);
  });

  it('prints each problem as file:line:col and exits 1', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'topogit-cli-'));
    await mkdir(path.join(dir, 'topologies'));
    await writeFile(
      path.join(dir, 'topologies', 'shop.yaml'),
      'cluster: shop\ninstances:\n  db001: { host: 127.0.0.11 }\n  db002: { host: 127.0.0.12, source: db001 }\n  db003: { host: 127.0.0.13, source: db009 }\n',
    );
    const r = await run(['validate'], dir);
    expect(r.code).toBe(1);
    expect(r.err).toBe('topologies/shop.yaml:5:38: instances.db003.source: "db009" is not an instance of cluster shop\n');
  });

  it.each([
    ['malformed YAML', 'cluster: shop\ninstances: {db001: [\n', /^bad\.yaml:\d+:\d+: invalid YAML: .+\n$/],
    ['an empty file', '', /^bad\.yaml:1:1: file is empty\n$/],
  ])('gives one line for %s', async (_what, text, expected) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'topogit-cli-'));
    await writeFile(path.join(dir, 'bad.yaml'), text);
    const r = await run(['validate', 'bad.yaml'], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(expected);
  });

  it('gives one line for a directory with no topology files and for a missing path', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'topogit-cli-'));
    await mkdir(path.join(dir, 'topologies'));
    const empty = await run(['validate'], dir);
    expect(empty.code).toBe(1);
    expect(empty.err).toMatch(/^topogit: topologies\/: no topology files \(\*\.yaml, \*\.yml\).*\n$/);
    const missing = await run(['validate', 'nowhere.yaml'], dir);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^topogit: nowhere\.yaml: no such file or directory.*\n$/);
  });

  it('every invalid fixture exits 1 without a stack trace', async () => {
    const r = await run(['validate', 'test/fixtures/topologies/invalid']);
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(/\n\s+at |internal error/);
    for (const line of r.err.trimEnd().split('\n')) expect(line).toMatch(/^test\/fixtures\/topologies\/invalid\/[\w.-]+:\d+:\d+: /);
  });

  it('reports a missing password variable without probing anything', async () => {
    const r = await run(['status', '-f', 'test/fixtures/topologies/valid/shop.yaml'], root, {});
    expect(r.code).toBe(1);
    expect(r.err).toContain('credentials.admin.passwordEnv: environment variable TOPOGIT_PASSWORD is not set');
    expect(r.err).toContain('nothing was probed');
  });
});

describe('topogit usage errors', () => {
  it('rejects unknown commands and bad option values with exit 1', async () => {
    expect((await run(['frobnicate'])).code).toBe(1);
    const r = await run(['--connect-timeout', 'soon', 'status']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('--connect-timeout must be an integer');
  });

  it('parses host[:port]', () => {
    expect(parseEndpoint('127.0.0.11')).toEqual({ host: '127.0.0.11', port: 3306 });
    expect(parseEndpoint('db1.example:3307')).toEqual({ host: 'db1.example', port: 3307 });
    expect(parseEndpoint('[::1]:3308')).toEqual({ host: '::1', port: 3308 });
    expect(() => parseEndpoint('db:99999')).toThrow(/not host\[:port\]/);
  });

  it('runs as the installed executable', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(root, 'bin/topogit.js'), '--help']);
    expect(stdout).toMatch(/Usage: topogit/);
    expect(stdout).toMatch(/sandbox/);
  });
});

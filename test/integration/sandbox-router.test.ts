// `topogit sandbox up --router haproxy` (issue 13): three real MariaDB servers on 127.0.0.231-233
// and a real HAProxy on 127.0.0.234 that outlives the command (writer :3306, reader :3307, runtime
// API :9999), declared in the topology file's `routing:` section; `sandbox ls` shows it and
// `sandbox down` stops it.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackend } from '../../src/adapters/haproxy.js';
import { findHaproxy, HAPROXY_INSTALL_HINT } from '../../src/adapters/sandbox/haproxy.js';
import { canBind } from '../../src/adapters/sandbox/local.js';
import { waitFor } from '../support/wait.js';
import { runIn, TEST_PASSWORD, TEST_REPL_PASSWORD, type Run } from './fleet.js';

const FRONT = '127.0.0.234';
let dir: string;
let env: NodeJS.ProcessEnv;
let up: Run;
const run = (...argv: string[]) => runIn(dir, env, argv);

/** Alive and not a zombie. */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/\) Z /.test(stat);
}

describe('sandbox up --router haproxy', () => {
  beforeAll(async () => {
    if (!findHaproxy()) throw new Error(`this test needs HAProxy: ${HAPROXY_INSTALL_HINT}`);
    dir = await mkdtemp(path.join(tmpdir(), 'topogit-sandbox-router-'));
    env = { PATH: process.env.PATH, TOPOGIT_PASSWORD: TEST_PASSWORD, TOPOGIT_REPL_PASSWORD: TEST_REPL_PASSWORD, TOPOGIT_SANDBOX_DIR: path.join(dir, '.sandbox') };
    up = await run('sandbox', 'up', '--cluster', 'rt', '--base-ip', '231', '--router', 'haproxy');
  });
  afterAll(async () => {
    if (dir) {
      await run('sandbox', 'down', '--cluster', 'rt');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('starts the servers and HAProxy, and prints the writer frontend', () => {
    expect(up.code, up.err).toBe(0);
    expect(up.out).toMatch(/^haproxy 127\.0\.0\.234:3306 \(writes\) :3307 \(reads\), runtime 127\.0\.0\.234:9999, pid \d+$/m);
    expect(up.out).toContain('applications write through 127.0.0.234:3306');
  });

  it('declares the router in the topology file, which validates', async () => {
    const text = await readFile(path.join(dir, 'topologies', 'rt.yaml'), 'utf8');
    expect(text).toMatch(/\nrouting:\n {2}- haproxy: 127\.0\.0\.234:9999\n {4}writer: mysql_rw\n {4}reader: mysql_ro\n$/);
    const v = await run('validate');
    expect(v.code, v.err + v.out).toBe(0);
  });

  it('an application through the writer frontend reaches db001; the runtime API answers', async () => {
    const c = await mysql.createConnection({ host: FRONT, port: 3306, user: 'topogit', password: TEST_PASSWORD, connectTimeout: 2000 });
    try {
      const [rows] = (await c.query('SELECT @@server_id AS id')) as unknown as [{ id: number }[]];
      expect(Number(rows[0]?.id)).toBe(1);
    } finally {
      await c.end();
    }
    expect((await readBackend(`${FRONT}:9999`, 'mysql_rw', 2000)).map((s) => `${s.server} ${s.admin}`)).toEqual(['db001 ready', 'db002 maint', 'db003 maint']);
    expect((await readBackend(`${FRONT}:9999`, 'mysql_ro', 2000)).map((s) => `${s.server} ${s.admin}`)).toEqual(['db001 maint', 'db002 ready', 'db003 ready']);
  });

  it('sandbox ls lists it running; sandbox down stops it and removes its files', async () => {
    const ls = await run('sandbox', 'ls', '--cluster', 'rt');
    expect(ls.code, ls.err).toBe(0);
    const pid = Number(/^haproxy 127\.0\.0\.234:3306 \(writes\) :3307 \(reads\), runtime 127\.0\.0\.234:9999, running pid (\d+)$/m.exec(ls.out)?.[1]);
    expect(pid, ls.out).toBeGreaterThan(0);
    expect(await running(pid)).toBe(true);
    // It is the one `up` started, from its own config in the sandbox's directory.
    expect(await readFile(`/proc/${pid}/cmdline`, 'utf8')).toContain(path.join(dir, '.sandbox', 'rt', 'haproxy', 'haproxy.cfg'));

    const down = await run('sandbox', 'down', '--cluster', 'rt');
    expect(down.code, down.err).toBe(0);
    expect(down.out).toBe(`sandbox rt: stopped 3 servers and haproxy (pid ${pid}), removed its files\n`);
    await waitFor(`haproxy pid ${pid} to be gone`, () => running(pid), (alive) => !alive, 5000);
    await expect(readBackend(`${FRONT}:9999`, 'mysql_rw', 1000)).rejects.toThrow(/cannot connect/);
    await expect(readFile(path.join(dir, '.sandbox', 'rt', 'sandbox.json'), 'utf8')).rejects.toThrow(/ENOENT/);
    await expect(readFile(path.join(dir, 'topologies', 'rt.yaml'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('without haproxy: a clear error naming scripts/ensure-haproxy.sh, and no server started', async () => {
    const e = { ...env, PATH: '/nonexistent', TOPOGIT_HAPROXY: path.join(dir, 'no-such-haproxy') };
    const r = await runIn(dir, e, ['sandbox', 'up', '--cluster', 'rt2', '--base-ip', '231', '--router', 'haproxy']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('no haproxy binary found');
    expect(r.err).toContain('bash scripts/ensure-haproxy.sh');
    await expect(readFile(path.join(dir, '.sandbox', 'rt2', 'sandbox.json'), 'utf8')).rejects.toThrow(/ENOENT/);
    await expect(readFile(path.join(dir, 'topologies', 'rt2.yaml'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('a router that cannot start takes the sandbox down again', async () => {
    // A binary that exits at once: the servers start, HAProxy does not.
    const e = { ...env, TOPOGIT_HAPROXY: '/bin/false' };
    const r = await runIn(dir, e, ['sandbox', 'up', '--cluster', 'rt3', '--base-ip', '231', '--router', 'haproxy']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the router did not start, so the sandbox was taken down again .*haproxy exited while starting/);
    await expect(readFile(path.join(dir, '.sandbox', 'rt3', 'sandbox.json'), 'utf8')).rejects.toThrow(/ENOENT/);
    await expect(readFile(path.join(dir, 'topologies', 'rt3.yaml'), 'utf8')).rejects.toThrow(/ENOENT/);
    // The servers were stopped: their addresses are free again.
    for (const host of ['127.0.0.231', '127.0.0.232', '127.0.0.233']) expect(await canBind(host, 3306)).toBe(true);
  });
});

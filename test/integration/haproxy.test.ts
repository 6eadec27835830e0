// The HAProxy adapter against a real HAProxy (started by the sandbox's startHaproxy) over real TCP:
// reading and changing server states through the runtime API, sessions really cut, and the errors
// an operator would see. No MySQL: the "servers" are small node:net echo servers, or nothing.
// Loopback addresses 127.0.0.211-219 belong to this file.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyRouter, haproxyVersion, runtimeCommand } from '../../src/adapters/haproxy.js';
import { findHaproxy, HAPROXY_INSTALL_HINT, startHaproxy, type RunningHaproxy } from '../../src/adapters/sandbox/haproxy.js';
import type { RouterChange, RouterSpec } from '../../src/core/routing.js';
import { waitFor, within } from '../support/wait.js';

const HOST = '127.0.0.211';
const SERVERS = [1, 2, 3].map((i) => ({ name: `db00${i}`, host: `127.0.0.21${i}`, port: 3306 }));

/** A port nobody listens on right now at `host` (the kernel's pick; released before use). */
async function freePort(host: string): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, resolve);
  });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A TCP server that keeps every connection open; `echo` sends back what it gets, else it never answers. */
async function tcpServer(host: string, port: number, echo: boolean): Promise<{ port: number; sockets: Set<net.Socket>; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const srv = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    if (echo) s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, resolve);
  });
  return {
    port: (srv.address() as net.AddressInfo).port,
    sockets,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

/** A client connection through a frontend, with what it received and whether it is closed. */
async function client(port: number): Promise<{ socket: net.Socket; received: () => string; closed: () => boolean }> {
  const socket = net.connect({ host: HOST, port });
  let received = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (received += d));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => received, closed: () => closed };
}

/** Sends `text` and waits for it to come back: the path through HAProxy to the server works. */
async function roundTrip(c: Awaited<ReturnType<typeof client>>, text: string): Promise<void> {
  const before = c.received().length;
  c.socket.write(text);
  await waitFor(`"${text}" echoed back through haproxy`, () => c.received().slice(before), (r) => r === text, 5000);
}

describe('HAProxy runtime API (real haproxy 2.6, real TCP)', () => {
  let dir: string;
  let haproxy: RunningHaproxy;
  let router: RouterSpec;
  let writerPort: number;
  let readerPort: number;
  let db001: Awaited<ReturnType<typeof tcpServer>>;
  const cleanup: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    if (!findHaproxy()) throw new Error(`these tests need HAProxy: ${HAPROXY_INSTALL_HINT}`);
    dir = await mkdtemp(path.join(tmpdir(), 'topogit-haproxy-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    db001 = await tcpServer(SERVERS[0]!.host, 3306, true);
    cleanup.push(() => db001.close());
    const runtime = { host: HOST, port: await freePort(HOST) };
    writerPort = await freePort(HOST);
    readerPort = await freePort(HOST);
    haproxy = await startHaproxy({
      dir,
      runtime,
      writer: { bind: { host: HOST, port: writerPort }, backend: 'mysql_rw' },
      reader: { bind: { host: HOST, port: readerPort }, backend: 'mysql_ro' },
      servers: SERVERS,
      primary: 'db001',
    });
    cleanup.push(() => haproxy.stop());
    router = { kind: 'haproxy', address: haproxy.address, writer: 'mysql_rw', reader: 'mysql_ro' };
  });

  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  const change = (backend: string, server: string, to: 'ready' | 'maint', shutdownSessions = false): RouterChange => ({ backend, server, to, shutdownSessions, why: 'test' });
  const admin = async (backend: string, server: string) => (await haproxyRouter.read(router, [backend], 2000)).find((s) => s.server === server)?.admin;

  it('runs in the foreground with its pid in the pid file, and tells its version', async () => {
    expect((await readFile(path.join(dir, 'haproxy.pid'), 'utf8')).trim()).toBe(String(haproxy.pid));
    expect(() => process.kill(haproxy.pid, 0)).not.toThrow();
    expect(await haproxyVersion(haproxy.address, 2000)).toMatch(/^2\.\d+\.\d+/);
  });

  it('reads the initial states: only the primary ready for writes, every other server ready for reads', async () => {
    expect(await haproxyRouter.read(router, ['mysql_rw', 'mysql_ro'], 2000)).toEqual([
      { backend: 'mysql_rw', server: 'db001', admin: 'ready', up: true },
      { backend: 'mysql_rw', server: 'db002', admin: 'maint', up: false },
      { backend: 'mysql_rw', server: 'db003', admin: 'maint', up: false },
      { backend: 'mysql_ro', server: 'db001', admin: 'maint', up: false },
      { backend: 'mysql_ro', server: 'db002', admin: 'ready', up: true },
      { backend: 'mysql_ro', server: 'db003', admin: 'ready', up: true },
    ]);
  });

  it('applies maint and ready, and read confirms each', async () => {
    await haproxyRouter.apply(router, change('mysql_ro', 'db002', 'maint'), 2000);
    expect(await admin('mysql_ro', 'db002')).toBe('maint');
    await haproxyRouter.apply(router, change('mysql_rw', 'db003', 'ready'), 2000);
    expect(await admin('mysql_rw', 'db003')).toBe('ready');
    // Back as they were (and the same change twice is no error).
    await haproxyRouter.apply(router, change('mysql_rw', 'db003', 'maint', true), 2000);
    await haproxyRouter.apply(router, change('mysql_rw', 'db003', 'maint', true), 2000);
    await haproxyRouter.apply(router, change('mysql_ro', 'db002', 'ready'), 2000);
    expect(await admin('mysql_rw', 'db003')).toBe('maint');
    expect(await admin('mysql_ro', 'db002')).toBe('ready');
  });

  it('maint alone keeps an established session; with shutdownSessions it is cut; then no new one gets through until ready', async () => {
    const c = await client(writerPort);
    cleanup.push(async () => void c.socket.destroy());
    await roundTrip(c, 'before');
    expect(db001.sockets.size).toBe(1);

    await haproxyRouter.apply(router, change('mysql_rw', 'db001', 'maint'), 2000);
    expect(await admin('mysql_rw', 'db001')).toBe('maint');
    await roundTrip(c, 'still-here'); // maint takes no new sessions, it does not cut the ones there are

    await haproxyRouter.apply(router, change('mysql_rw', 'db001', 'maint', true), 2000);
    await waitFor('the client session through the writer frontend to be closed', () => c.closed(), (closed) => closed, 5000);
    await waitFor("db001's side of the session to be closed", () => db001.sockets.size, (n) => n === 0, 5000);

    // Every writer server in maint: HAProxy accepts and closes, the server never sees it.
    const refused = await client(writerPort);
    cleanup.push(async () => void refused.socket.destroy());
    refused.socket.write('nobody');
    await waitFor('a new writer session with no server ready to be closed by haproxy', () => refused.closed(), (closed) => closed, 5000);
    expect(refused.received()).toBe('');
    expect(db001.sockets.size).toBe(0);

    await haproxyRouter.apply(router, change('mysql_rw', 'db001', 'ready'), 2000);
    const again = await client(writerPort);
    cleanup.push(async () => void again.socket.destroy());
    await roundTrip(again, 'after');
  });

  it('an unknown backend or server is a clear one-line error', async () => {
    const at = `haproxy ${haproxy.address}`;
    await expect(haproxyRouter.read(router, ['mysql_rw', 'nope'], 2000)).rejects.toThrow(`${at}: backend nope does not exist`);
    await expect(haproxyRouter.apply(router, change('mysql_rw', 'db009', 'maint', true), 2000)).rejects.toThrow(`${at}: set server mysql_rw/db009 state maint: No such server.`);
    await expect(haproxyRouter.apply(router, change('nope', 'db001', 'ready'), 2000)).rejects.toThrow(`${at}: set server nope/db001 state ready: No such backend.`);
    // A name that would smuggle a second command (`;`) never reaches HAProxy.
    await expect(haproxyRouter.apply(router, change('mysql_rw', 'db001;shutdown', 'maint'), 2000)).rejects.toThrow(/server name "db001;shutdown" is not an HAProxy name/);
    expect(await admin('mysql_rw', 'db001')).toBe('ready');
  });

  it('fails quickly with ECONNREFUSED where nothing listens', async () => {
    const port = await freePort('127.0.0.215');
    const started = Date.now();
    await expect(haproxyRouter.read({ ...router, address: `127.0.0.215:${port}` }, ['mysql_rw'], 5000)).rejects.toThrow(`haproxy 127.0.0.215:${port}: cannot connect: ECONNREFUSED`);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('times out within the timeout where a server accepts and never answers', async () => {
    const hole = await tcpServer('127.0.0.216', 0, false);
    cleanup.push(() => hole.close());
    const address = `127.0.0.216:${hole.port}`;
    const started = Date.now();
    const read = haproxyRouter.read({ ...router, address }, ['mysql_rw'], 300);
    await expect(within('a read from a black hole', read, 3000)).rejects.toThrow(`haproxy ${address}: no answer to \`show servers state mysql_rw\` within 300 ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await expect(within('an apply to a black hole', haproxyRouter.apply({ ...router, address }, change('mysql_rw', 'db001', 'maint'), 300), 3000)).rejects.toThrow(/no answer to `set server mysql_rw\/db001 state maint` within 300 ms/);
    expect(hole.accepted()).toBe(2);
  });

  it('speaks over a unix socket too, when the address is a path', async () => {
    const unixDir = await mkdtemp(path.join(tmpdir(), 'topogit-haproxy-unix-'));
    cleanup.push(() => rm(unixDir, { recursive: true, force: true }));
    const socketPath = path.join(unixDir, 'admin.sock');
    const h = await startHaproxy({ dir: unixDir, runtime: { path: socketPath }, writer: { bind: { host: '127.0.0.217', port: await freePort('127.0.0.217') }, backend: 'w' }, servers: SERVERS, primary: 'db002' });
    cleanup.push(() => h.stop());
    expect(h.address).toBe(socketPath);
    const r: RouterSpec = { kind: 'haproxy', address: socketPath, writer: 'w' };
    expect((await haproxyRouter.read(r, ['w'], 2000)).map((s) => `${s.server}:${s.admin}`)).toEqual(['db001:maint', 'db002:ready', 'db003:maint']);
    await h.stop();
    await expect(haproxyRouter.read(r, ['w'], 2000)).rejects.toThrow(new RegExp(`^haproxy ${socketPath}: cannot connect: (ENOENT|ECONNREFUSED)$`));
  });

  it('startHaproxy fails clearly when haproxy cannot start (its frontend address is taken), and stop() ends the process', async () => {
    const taken = await tcpServer('127.0.0.218', 0, false);
    cleanup.push(() => taken.close());
    const failDir = await mkdtemp(path.join(tmpdir(), 'topogit-haproxy-fail-'));
    cleanup.push(() => rm(failDir, { recursive: true, force: true }));
    await expect(
      startHaproxy({ dir: failDir, runtime: { host: '127.0.0.218', port: await freePort('127.0.0.218') }, writer: { bind: { host: '127.0.0.218', port: taken.port }, backend: 'w' }, servers: SERVERS }),
    ).rejects.toThrow(/^haproxy exited while starting \(code \d+\): .*ALERT/);

    const stopDir = await mkdtemp(path.join(tmpdir(), 'topogit-haproxy-stop-'));
    cleanup.push(() => rm(stopDir, { recursive: true, force: true }));
    const h = await startHaproxy({ dir: stopDir, runtime: { host: '127.0.0.219', port: await freePort('127.0.0.219') }, writer: { bind: { host: '127.0.0.219', port: await freePort('127.0.0.219') }, backend: 'w' }, servers: SERVERS });
    cleanup.push(() => h.stop());
    await within('stop()', h.stop(), 6000);
    expect(() => process.kill(h.pid, 0)).toThrow();
    await expect(haproxyVersion(h.address, 1000)).rejects.toThrow(/cannot connect: ECONNREFUSED/);
  });
});

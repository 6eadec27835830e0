import { describe, expect, it } from 'vitest';
import { openCoordinator, parseCoordinatorUrl } from '../../src/coordination/coordinator.js';
import { callMsFor } from '../../src/coordination/etcd.js';

describe('--coordinator', () => {
  it('parses file, etcd:// and etcds:// with one or more endpoints', () => {
    expect(parseCoordinatorUrl('file')).toEqual({ kind: 'file' });
    expect(parseCoordinatorUrl('etcd://10.0.0.5:2379')).toEqual({ kind: 'etcd', tls: false, hosts: ['10.0.0.5:2379'] });
    expect(parseCoordinatorUrl('etcds://a.example:2379, b.example:2379,[::1]:2379')).toEqual({ kind: 'etcd', tls: true, hosts: ['a.example:2379', 'b.example:2379', '[::1]:2379'] });
  });

  it.each([
    ['consul://x:8500', /expected file, etcd:\/\/HOST:PORT/],
    ['etcd://', /expected file, etcd/],
    ['etcd://host', /host is not HOST:PORT/],
    ['etcd://a:2379,b', /b is not HOST:PORT/],
    ['etcd://user:pw@a:2379', /is not HOST:PORT/],
  ])('refuses %s in one line', (url, message) => {
    expect(() => parseCoordinatorUrl(url)).toThrow(message);
  });

  it('refuses a bad prefix, a TTL etcd cannot keep, TLS files without etcds://, and a user without a password', async () => {
    const o = { url: 'etcd://127.0.0.1:2379', prefix: '/topogit/', ttlSeconds: 5 };
    await expect(openCoordinator({ ...o, prefix: 'topogit' }, '/', {})).rejects.toThrow(/--coordinator-prefix topogit: expected a path that starts and ends with \//);
    await expect(openCoordinator({ ...o, ttlSeconds: 1 }, '/', {})).rejects.toThrow(/between 2 and 600 seconds/);
    await expect(openCoordinator({ ...o, tls: { ca: 'ca.pem' } }, '/', {})).rejects.toThrow(/need an etcds:\/\/ coordinator/);
    await expect(openCoordinator(o, '/', { TOPOGIT_ETCD_USER: 'root' })).rejects.toThrow(/TOPOGIT_ETCD_USER and TOPOGIT_ETCD_PASSWORD go together/);
    // Empty variables (an undefined CI secret) count as unset.
    const c = await openCoordinator(o, '/', { TOPOGIT_ETCD_USER: '', TOPOGIT_ETCD_PASSWORD: '' });
    expect(c.kind).toBe('etcd');
    await c.close();
  });

  it('an etcd call never outlives a quarter of the TTL, nor 1 s', () => {
    expect(callMsFor(2)).toBe(500);
    expect(callMsFor(5)).toBe(1000);
    expect(callMsFor(60)).toBe(1000);
  });
});

describe('guardedOpen', () => {
  it('asks the hold before opening and before every statement: once it is not fresh, nothing more reaches the server', async () => {
    const { guardedOpen } = await import('../../src/coordination/coordinator.js');
    let fresh = true;
    const sent: string[] = [];
    const hold = { confirm: async () => fresh, fresh: () => fresh, refusal: undefined as string | undefined, release: async () => undefined };
    const open = guardedOpen(async () => ({ query: async (sql: string) => (sent.push(sql), []), close: async () => undefined }), hold);
    const s = await open({ host: '127.0.0.1', port: 3306 }, { user: 'u', password: 'p' }, { connectMs: 100, queryMs: 100 });
    await s.query('STOP REPLICA');
    fresh = false;
    await expect(s.query('CHANGE MASTER TO MASTER_HOST=?')).rejects.toThrow(/not acting: this process may no longer act on the cluster/);
    await expect(open({ host: '127.0.0.1', port: 3306 }, { user: 'u', password: 'p' }, { connectMs: 100, queryMs: 100 })).rejects.toThrow(/not acting/);
    expect(sent).toEqual(['STOP REPLICA']);
  });
});
